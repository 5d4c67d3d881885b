"""The system file model: defaults, instance names and errors with positions."""

from __future__ import annotations

from pathlib import Path

import pytest

from statemachine_engine.errors import ConfigError
from statemachine_engine.tools.system import is_system_file, load_system


def system(tmp_path: Path, text: str) -> Path:
    (tmp_path / "m.yaml").write_text("initial_state: a\nmetadata: {machine_name: mm}\n")
    path = tmp_path / "system.yaml"
    path.write_text(text)
    return path


def test_defaults_and_instance_names(tmp_path: Path) -> None:
    spec = load_system(
        system(
            tmp_path,
            "db: sqlite:///x.db\nmachines:\n  - config: m.yaml\n  - {config: m.yaml, name: w,"
            " instances: 3, env: {A: 1}, initial_context: {k: v}}\n"
            "restart: {max_restarts: 2, backoff: 0.1}\n",
        )
    )
    first, second = spec.machines
    assert first.name == "mm" and first.instance_names == ("mm",)
    assert first.config == tmp_path / "m.yaml"
    assert second.instance_names == ("w-1", "w-2", "w-3")
    assert second.env == {"A": "1"} and second.initial_context == {"k": "v"}
    assert spec.db == f"sqlite:///{tmp_path / 'x.db'}" and spec.ui is False
    assert (spec.restart.max_restarts, spec.restart.backoff, spec.restart.window) == (2, 0.1, 60)
    assert is_system_file(tmp_path / "system.yaml")
    assert not is_system_file(tmp_path / "m.yaml")


@pytest.mark.parametrize(
    ("db", "expected"),
    [
        ("sqlite:///data/s.db", "sqlite:///{dir}/data/s.db"),
        ("data/s.db", "{dir}/data/s.db"),
        ("sqlite:////abs/s.db", "sqlite:////abs/s.db"),
        ("/abs/s.db", "/abs/s.db"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
    ],
)
def test_paths_are_relative_to_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db: str, expected: str
) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "actions").mkdir()
    system(
        folder, f"db: {db}\nworkdir: run\nmachines:\n  - {{config: m.yaml, actions_dir: actions}}\n"
    )
    monkeypatch.chdir(tmp_path)  # `up` started elsewhere: nothing depends on the cwd
    spec = load_system("project/system.yaml")
    assert spec.db == expected.format(dir=folder)
    (machine,) = spec.machines
    assert machine.config.resolve() == folder / "m.yaml"
    assert [d.resolve() for d in machine.actions_dirs] == [folder / "actions"]
    assert spec.workdir is not None and spec.workdir.resolve() == folder / "run"


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("machines: []\n", ":1:11", "`machines:` must be a non-empty list"),
        ("machines:\n  - {config: m.yaml}\nuii: true\n", ":3:1", "unknown system key 'uii'"),
        ("machines:\n  - {config: m.yaml, instances: 0}\n", ":2:33", "at least 1"),
        ("machines:\n  - {config: m.yaml}\n  - {config: m.yaml}\n", ":3:5", "used twice"),
        ("machines:\n  - {config: m.yaml, name: 'a b'}\n", ":2:28", "invalid machine name"),
        ("machines:\n  - {config: m.yaml}\nui: 'yes'\n", ":3:5", "`ui:` must be true"),
    ],
)
def test_errors_name_the_position(tmp_path: Path, text: str, where: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_system(system(tmp_path, text))
    assert f"system.yaml{where}: " in str(info.value)
    assert message in str(info.value)
