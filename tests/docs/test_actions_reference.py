"""docs/actions-reference.md is generated from the action declarations; this fails when it
has drifted, and checks that every built-in is on it."""

from __future__ import annotations

import runpy
from pathlib import Path

from statemachine_engine.actions.builtin import BUILTINS

ROOT = Path(__file__).resolve().parents[2]


def test_actions_reference_is_up_to_date() -> None:
    generator = runpy.run_path(str(ROOT / "scripts" / "gen_actions_docs.py"))
    page = ROOT / "docs" / "actions-reference.md"
    assert page.read_text("utf-8") == generator["render"](), (
        "docs/actions-reference.md is out of date: run `make cli-docs`"
    )


def test_every_builtin_and_parameter_is_listed() -> None:
    from statemachine_engine.core.loader import ActionLoader

    page = (ROOT / "docs" / "actions-reference.md").read_text("utf-8")
    loader = ActionLoader(entry_points=())
    for name in BUILTINS:
        assert f"## `{name}`" in page
        for param in loader.resolve(name).declared().params or ():
            assert f"| `{param.name}` |" in page, (name, param.name)
