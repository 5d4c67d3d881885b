"""`statemachine-fsm` draws any definition whatever its actions or placeholders (issue 15,
item 2): every released example, without its actions directory, and a file whose actions
would not load."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from statemachine_engine.config.yamlsource import read_yaml

BIN = Path(sys.executable).parent


def _fsm(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "statemachine-fsm"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_every_released_example_is_drawn(released: Path, tmp_path: Path) -> None:
    configs = sorted((released / "examples").glob("*/config/*.yaml"))
    assert len(configs) == 7
    for number, config in enumerate(configs):
        out = tmp_path / f"fsm{number}"  # two examples name their file worker.yaml
        done = _fsm("--out", str(out), str(config), cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        (mmd,) = out.glob(f"{config.stem}/*.mmd")
        states = read_yaml(config.read_text(), str(config)).get("states") or []
        drawn = mmd.read_text()
        assert "stateDiagram-v2" in drawn, config
        assert all(f" {state} " in drawn or f" {state}\n" in drawn for state in states), config


def test_a_file_with_unresolvable_actions_is_drawn(tmp_path: Path) -> None:
    config = tmp_path / "odd.yaml"
    config.write_text(
        """\
initial_state: a
actions:
  a: [{type: no_such_action, anything: 1}, {type: bash, command: "echo {nobody_sets_this}"}]
  b: [{type: log, message: "{x|length|default:0}", bogus_param: 2}]
transitions:
  - {from: a, to: b, event: go}
"""
    )
    done = _fsm("--stdout", str(config), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "a --> b" in done.stdout


def test_a_structural_error_still_fails(tmp_path: Path) -> None:
    config = tmp_path / "broken.yaml"
    config.write_text(
        "initial_state: a\ntransitions:\n  - {from: a, to: b, event: go}\nstates: [a]\n"
    )
    done = _fsm("--stdout", str(config), cwd=tmp_path)
    assert done.returncode == 2
    assert "undeclared state 'b'" in done.stderr
