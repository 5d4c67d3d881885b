"""`statemachine init [DIR] [--example NAME]`: a starter project that loads and validates,
refusals with one line and exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from statemachine_engine.cli import init
from statemachine_engine.cli.run import main as run_main
from statemachine_engine.cli.validate import main as validate_main
from statemachine_engine.tools.system import load_system

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = init.example_names(init.examples_root())


def test_examples_are_found_in_the_checkout() -> None:
    assert init.examples_root() == ROOT / "examples"
    assert init.DEFAULT_EXAMPLE in EXAMPLES
    assert sorted(p.parent.name for p in (ROOT / "examples").glob("*/system.yaml")) == EXAMPLES


def test_default_project_runs_two_machines_and_the_ui(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert run_main(["init", "demo"]) == 0
    out = capsys.readouterr().out
    assert "cd demo\n" in out and "statemachine up system.yaml" in out
    assert (
        f"$ statemachine init demo\n{out}$ cd demo\n" in (ROOT / "docs/quickstart.md").read_text()
    )
    demo = tmp_path / "demo"
    assert sorted(p.name for p in demo.iterdir()) == [
        "README.md",
        "controller.yaml",
        "system.yaml",
        "worker.yaml",
    ]
    spec = load_system(demo / "system.yaml")
    assert spec.ui is True
    assert spec.db == f"sqlite:///{demo / 'data' / 'statemachine.db'}"
    assert [m.name for m in spec.machines] == ["controller", "batch_worker"]
    readme = (demo / "README.md").read_text()
    assert readme.startswith("# Controller and worker\n")
    assert "examples/" not in readme and "statemachine up system.yaml" in readme


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_example_makes_a_valid_project(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = tmp_path / name
    assert init.main([str(dest), "--example", name]) == 0
    assert not (dest / "demo.py").exists()  # repository-only files stay behind
    source = ROOT / "examples" / name
    for path in source.rglob("*"):
        rel = path.relative_to(source)
        if path.is_file() and "__pycache__" not in rel.parts and rel.name != "demo.py":
            assert (dest / rel).is_file(), rel
    monkeypatch.chdir(dest)
    assert validate_main(["system.yaml"]) == 0
    assert load_system("system.yaml").ui is True


def test_current_directory_is_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert init.main(["--example", "simple_worker"]) == 0
    assert (tmp_path / "system.yaml").is_file() and (tmp_path / "worker.yaml").is_file()
    assert "cd " not in capsys.readouterr().out


def test_non_empty_directory_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    assert init.main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"statemachine init: error: {tmp_path}: directory is not empty; give a new or empty"
        " DIR (nothing was written)\n"
    )
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_a_file_as_directory_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "taken"
    target.write_text("")
    assert init.main([str(target)]) == 2
    assert "exists and is not a directory" in capsys.readouterr().err


def test_unknown_example_names_the_choices(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert init.main([str(tmp_path / "x"), "--example", "pipelin"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "no example 'pipelin'; choose from " + ", ".join(EXAMPLES) in err
    assert not (tmp_path / "x").exists()


def test_list_prints_the_examples(capsys: pytest.CaptureFixture[str]) -> None:
    assert init.main(["--list"]) == 0
    assert capsys.readouterr().out.split() == EXAMPLES
