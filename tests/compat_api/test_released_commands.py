"""Every console script, `python -m` module path and option of the released package is
accepted; the lists are read from the released sdist, so they cannot drift."""

from __future__ import annotations

import argparse
import ast
import json
import re
import subprocess
import sys
import tomllib
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from statemachine_engine.cli import events, fsm, run, ui, validate

PY = sys.executable
BIN = Path(sys.executable).parent
TIMEOUT = 120

#: Our parser for each released program whose options we check.
PARSERS: dict[str, Callable[[], argparse.ArgumentParser]] = {
    "statemachine": run.build_parser,
    "statemachine-ui": ui.build_parser,
    "statemachine-validate": validate.build_parser,
    "statemachine-lint": validate.build_parser,
    "statemachine-fsm": fsm.build_parser,
    "statemachine-diagrams": fsm.build_parser,
    "statemachine-events": events.build_parser,
}


def _scripts(released: Path) -> dict[str, str]:
    project = tomllib.loads((released / "pyproject.toml").read_text())
    scripts: dict[str, str] = project["project"]["scripts"]
    return scripts


def _module_file(released: Path, target: str) -> Path:
    """The file a released entry point `pkg.mod:func` lives in (a package's `main` is in
    its `__init__` or, for the linter, in `cli.py`, which its `main` calls)."""
    module = target.split(":")[0]
    base = released / "src" / Path(*module.split("."))
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return base / "cli.py"


def _options(path: Path) -> set[str]:
    """Every `--option` a released module passes to `add_argument`."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_argument":
            for arg in node.args:
                if isinstance(arg, ast.Constant) and str(arg.value).startswith("--"):
                    found.add(str(arg.value))
    return found


def _run(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=TIMEOUT, cwd=cwd)


def test_every_released_console_script_is_installed(released: Path, tmp_path: Path) -> None:
    ours = {ep.name for ep in entry_points(group="console_scripts")}
    released_names = set(_scripts(released))
    assert {"statemachine-events", "statemachine-lint", "statemachine-diagrams"} <= released_names
    assert released_names <= ours
    for name in sorted(released_names):
        result = _run(str(BIN / name), "--help", cwd=tmp_path)
        assert result.returncode == 0, (name, result.stderr)
        assert "usage:" in result.stdout


def test_every_released_option_is_accepted(released: Path) -> None:
    scripts = _scripts(released)
    checked = 0
    for name, parser in PARSERS.items():
        released_options = _options(_module_file(released, scripts[name]))
        known = set(parser()._option_string_actions)
        assert released_options <= known, (name, released_options - known)
        checked += len(released_options)
    assert checked >= 25


def _main_modules(released: Path) -> list[str]:
    """Released modules runnable with `python -m` (they have a `__main__` guard)."""
    src = released / "src"
    modules = []
    for path in sorted(src.rglob("*.py")):
        if "node_modules" in path.parts or '__name__ == "__main__"' not in path.read_text():
            continue
        parts = path.relative_to(src).with_suffix("").parts
        modules.append(".".join(parts))
    return modules


def test_every_released_module_path_runs(released: Path, tmp_path: Path) -> None:
    modules = _main_modules(released)
    assert "statemachine_engine.tools.validate" in modules
    assert len(modules) >= 7
    for module in modules:
        result = _run(PY, "-m", module, "--help", cwd=tmp_path)
        assert result.returncode == 0, (module, result.stderr)
        assert "usage:" in result.stdout, module


BROKEN = "initial_state: a\nstates: [a, b]\ntransitions:\n  - {from: a, to: bb, event: go}\n"


@pytest.mark.parametrize(
    ("module", "text"),
    [
        ("statemachine_engine.tools.validate", BROKEN),
        ("statemachine_engine.tools.validate", "states: [a\n"),
        ("statemachine_engine.tools.diagrams", BROKEN),
        ("statemachine_engine.tools.cli", BROKEN),
    ],
)
def test_module_path_fails_on_a_broken_file(tmp_path: Path, module: str, text: str) -> None:
    (tmp_path / "broken.yaml").write_text(text)
    result = _run(PY, "-m", module, "broken.yaml", cwd=tmp_path)
    assert result.returncode == 2, result
    out = [line for line in (result.stdout + result.stderr).splitlines() if "broken.yaml:" in line]
    assert len(out) == 1, result


WORKER = """\
metadata: {machine_name: w}
initial_state: idle
states: [idle, done, lonely]
transitions:
  - {from: idle, to: done, event: go}
"""


def test_released_tool_spellings_work_with_a_note(tmp_path: Path) -> None:
    (tmp_path / "w.yaml").write_text(WORKER)
    fsm_run = _run(str(BIN / "statemachine-fsm"), "w.yaml", "--output-dir", "out", cwd=tmp_path)
    assert fsm_run.returncode == 0, fsm_run.stderr
    assert (tmp_path / "out" / "w" / "w.mmd").is_file()
    assert "note: --output-dir DIR is the 1.0 spelling; use --out DIR" in fsm_run.stderr

    diagrams = _run(
        str(BIN / "statemachine-diagrams"), "w.yaml", "--output-dir", "d", "--old-format-only",
        cwd=tmp_path,
    )  # fmt: skip
    assert diagrams.returncode == 0, diagrams.stderr
    assert (tmp_path / "d" / "w" / "w.md").is_file()
    assert "statemachine-diagrams is the 1.0 name; use statemachine-fsm" in diagrams.stderr

    positional = _run(str(BIN / "statemachine-fsm"), "w.yaml", "md/w_fsm.md", cwd=tmp_path)
    assert positional.returncode == 0, positional.stderr
    assert (tmp_path / "md" / "w_fsm.md").read_text().count("stateDiagram-v2") == 1
    assert "the positional OUT.md is the 1.0 spelling" in positional.stderr

    quiet = _run(
        str(BIN / "statemachine-validate"), "--quiet", "--no-color", "w.yaml", cwd=tmp_path
    )
    assert quiet.returncode == 1, quiet  # `lonely` cannot be reached: a lint finding
    assert "SM101" in quiet.stdout
    assert "file(s) checked" not in quiet.stderr
    assert re.search(r"^note: --no-color is ignored", quiet.stderr, re.M)

    lint = _run(str(BIN / "statemachine-lint"), "--format", "json", "w.yaml", cwd=tmp_path)
    assert lint.returncode == 1
    assert "statemachine-lint is the 1.0 name" in lint.stderr


def _lint_keys(released: Path) -> tuple[set[str], set[str]]:
    """1.0's lint JSON keys: per file (the dict its CLI prints) and per issue (LintIssue)."""
    linter = released / "src/statemachine_engine/tools/linter"
    per_file: set[str] = set()
    for node in ast.walk(ast.parse((linter / "cli.py").read_text())):
        if isinstance(node, ast.Dict) and any(
            isinstance(k, ast.Constant) and k.value == "issues" for k in node.keys
        ):
            per_file = {str(k.value) for k in node.keys if isinstance(k, ast.Constant)}
    models = ast.parse((linter / "models.py").read_text())
    (issue,) = [n for n in models.body if isinstance(n, ast.ClassDef) and n.name == "LintIssue"]
    per_issue = {
        n.target.id
        for n in issue.body
        if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)
    }
    return per_file, per_issue


def test_lint_json_keeps_the_released_keys(released: Path, tmp_path: Path) -> None:
    per_file, per_issue = _lint_keys(released)
    assert {"file", "issues", "error_count", "warning_count"} <= per_file
    assert {"code", "severity", "message", "fix"} <= per_issue
    (tmp_path / "w.yaml").write_text(WORKER)
    (tmp_path / "clean.yaml").write_text(WORKER.replace(", lonely", ""))
    lint = _run(
        str(BIN / "statemachine-lint"), "--format", "json", "w.yaml", "clean.yaml", cwd=tmp_path
    )
    assert lint.returncode == 1, lint.stderr
    w, clean = json.loads(lint.stdout)
    assert set(w) == per_file and set(w["issues"][0]) == per_issue
    assert (w["file"], clean["file"]) == ("w.yaml", "clean.yaml")
    assert w["error_count"] == clean["error_count"] == 0
    assert w["warning_count"] == len(w["issues"]) == clean["warning_count"] + 1
    (unreachable,) = [i for i in w["issues"] if i["code"] == "SM101"]  # `lonely`
    assert unreachable["severity"] == "warning" and unreachable["fix"]
    assert "SM101" not in {i["code"] for i in clean["issues"]}


def test_a_refused_argument_stays_one_line(tmp_path: Path) -> None:
    result = _run(str(BIN / "statemachine-lint"), "--select", "E001", "x.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
