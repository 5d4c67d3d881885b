"""Mermaid diagrams: golden files, determinism, and validity in the real Mermaid parser."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from statemachine_engine.cli.fsm import main as fsm_main
from statemachine_engine.config import load_definition
from statemachine_engine.core.loader import ActionLoader
from statemachine_engine.tools.diagram import markdown, mermaid, state_id

from .conftest import EXAMPLE_CONFIGS, ROOT, run_node

GOLDEN = Path(__file__).parent / "golden"
CONFIGS = [*EXAMPLE_CONFIGS, GOLDEN / "fancy.yaml"]


def golden_name(config: Path) -> str:
    return f"{config.parent.name}__{config.stem}.mmd"


def load(config: Path):  # type: ignore[no-untyped-def]
    return load_definition(config, ActionLoader([config.parent / "actions"]))


@pytest.mark.parametrize("config", CONFIGS, ids=golden_name)
def test_diagram_matches_golden_file(config: Path) -> None:
    text = mermaid(load(config))
    golden = GOLDEN / golden_name(config)
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")


def test_diagram_marks_initial_final_timeout_wildcard_and_groups() -> None:
    text = mermaid(load(GOLDEN / "fancy.yaml"))
    lines = text.splitlines()
    assert "    [*] --> idle" in lines
    assert "    stopped --> [*]" in lines
    assert "    idle --> s_1: \u23f1 timeout(5)" in lines
    assert sum(1 for line in lines if "--> stopped" in line) == 1
    assert "    any__ --> stopped: stop" in lines
    assert '    state "Work" as group_0__ {' in lines
    assert "    parsing --> failed: error, \u23f1 timeout(2.5)" in lines


def test_reserved_or_odd_state_names_get_stable_ids() -> None:
    definition = load(GOLDEN / "fancy.yaml")
    assert state_id(definition, "end") == "s_1"
    assert state_id(definition, "done-ok") == "s_5"
    assert state_id(definition, "idle") == "idle"


def test_same_input_same_bytes() -> None:
    first = [mermaid(load(c)) for c in CONFIGS]
    assert first == [mermaid(load(c)) for c in CONFIGS]


def test_fsm_command_writes_mmd_and_markdown(tmp_path: Path) -> None:
    config = ROOT / "examples" / "pipeline" / "generator.yaml"
    assert fsm_main([str(config), "--out", str(tmp_path)]) == 0
    mmd = tmp_path / "generator" / "generator.mmd"
    md = tmp_path / "generator" / "generator.md"
    definition = load(config)
    assert mmd.read_text() == mermaid(definition)
    assert md.read_text() == markdown(definition)
    assert "```mermaid\n---\ntitle: " in md.read_text()
    before = mmd.read_bytes(), md.read_bytes()
    assert fsm_main([str(config), "--out", str(tmp_path)]) == 0
    assert (mmd.read_bytes(), md.read_bytes()) == before


def test_fsm_command_reports_a_broken_config_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("initial_state: a\nstates: [a]\ntransitions:\n  - {from: a, to: b, event: e}\n")
    assert fsm_main([str(bad), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("statemachine-fsm: error:") and "bad.yaml:4:" in err
    assert "\n" not in err


def test_every_diagram_parses_in_the_real_mermaid_library() -> None:
    files = [str(GOLDEN / golden_name(c)) for c in CONFIGS]
    results = run_node("parse_mermaid.mjs", *files)
    assert [r for r in results if not r["ok"]] == []
    assert {r["type"] for r in results} == {"stateDiagram"}
    assert len(results) == len(files)


def test_the_mermaid_check_rejects_a_broken_diagram(tmp_path: Path) -> None:
    broken = tmp_path / "broken.mmd"
    broken.write_text("stateDiagram-v2\n    a --> : go\n")
    (result,) = run_node("parse_mermaid.mjs", str(broken))
    assert result["ok"] is False


def test_caller_chosen_ids_for_the_ui() -> None:
    definition = load(ROOT / "examples" / "pipeline" / "generator.yaml")
    ids = {state: f"s{i}" for i, state in enumerate(definition.states)}
    text = mermaid(definition, ids)
    assert '    state "waiting" as s1' in text.splitlines()
    assert "    [*] --> s0" in text.splitlines()
