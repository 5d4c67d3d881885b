"""`statemachine-validate`: output formats, exit codes, system files, every example clean."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from statemachine_engine.cli.validate import main

ROOT = Path(__file__).parents[2]
EXAMPLES = ROOT / "examples"
CLEAN = "initial_state: a\nstates: [a, b]\nactions:\n  a: [{type: log, success: go}]\n" + (
    "transitions:\n  - {from: a, to: b, event: go}\n"
)
DEAD = CLEAN.replace("states: [a, b]", "states: [a, b, c]")


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("directory", sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir()))
def test_every_example_validates_clean_with_strict(
    directory: str, capsys: pytest.CaptureFixture[str]
) -> None:
    configs = sorted(str(p) for p in (EXAMPLES / directory).glob("*.yaml"))
    assert configs
    for config in configs:
        assert main([config, "--strict"]) == 0, capsys.readouterr().out
    assert main([*configs, "--strict"]) == 0, capsys.readouterr().out
    assert capsys.readouterr().out == ""


def test_exit_codes_clean_findings_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([write(tmp_path, "clean.yaml", CLEAN)]) == 0
    assert main([write(tmp_path, "dead.yaml", DEAD)]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"{tmp_path / 'dead.yaml'}:2:16: warning SM101 state 'c'")
    broken = write(tmp_path, "broken.yaml", "states: [a]\n")
    assert main([broken, write(tmp_path, "dead2.yaml", DEAD)]) == 2
    out = capsys.readouterr().out
    assert "error SM001 missing `initial_state`" in out
    assert "SM101" in out


def test_json_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([write(tmp_path, "dead.yaml", DEAD), "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["warnings"] == 1 and report["errors"] == 0
    (finding,) = report["findings"]
    assert finding == {
        "file": str(tmp_path / "dead.yaml"),
        "line": 2,
        "column": 16,
        "severity": "warning",
        "code": "SM101",
        "message": "state 'c' cannot be reached from the initial state 'a'",
        "hint": "add a transition into it, or remove it",
    }


def test_system_file_names_the_machines_for_send_event(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sender = CLEAN.replace(
        "[{type: log, success: go}]",
        "[{type: send_event, target_machine: helper-2, event_type: go, success: go}]",
    )
    write(tmp_path, "sender.yaml", sender)
    write(tmp_path, "helper.yaml", CLEAN)
    system = write(
        tmp_path,
        "system.yaml",
        "machines:\n  - {config: sender.yaml}\n  - {config: helper.yaml, name: helper,"
        " instances: 2}\n",
    )
    assert main([system, "--strict"]) == 0, capsys.readouterr().out
    system = write(
        tmp_path, "system.yaml", "machines:\n  - {config: sender.yaml}\n  - {config: helper.yaml}\n"
    )
    assert main([system]) == 1
    assert "SM108 send_event targets machine 'helper-2'" in capsys.readouterr().out


def test_bad_system_file_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    system = write(tmp_path, "system.yaml", "machines:\n  - {config: missing.yaml}\n")
    assert main([system]) == 2
    assert "system.yaml:2:14: error SM001 machine config 'missing.yaml' not found" in (
        capsys.readouterr().out
    )


def test_no_config_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert capsys.readouterr().err.startswith("statemachine-validate: error:")
