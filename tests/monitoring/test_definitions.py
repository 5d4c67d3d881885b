"""Definitions as the page draws them: Mermaid text, arrow numbering, Kanban columns."""

from __future__ import annotations

import builtins
import re
from typing import Any

import pytest

from statemachine_engine.errors import ConfigError
from statemachine_engine.monitoring import definitions
from statemachine_engine.monitoring.definitions import definition_view

CUSTOM = """\
name: Custom
initial_state: a
groups: {Middle: [b, c]}
states: [a, b, c, 'we.ird:x-1']
events: [go, on, back, stop]
actions:
  a:
    - type: my_private_action
      target: "{something.unknown}"
transitions:
  - {from: a, to: b, event: go}
  - {from: b, to: c, event: on}
  - {from: c, to: a, event: back}
  - {from: b, to: c, event: back}
  - {from: "*", to: 'we.ird:x-1', event: stop}
"""


def _arrows(text: str) -> list[str]:
    return [line.split(":")[0].strip() for line in text.splitlines() if "-->" in line]


def test_custom_actions_are_accepted_and_columns_follow_groups() -> None:
    view = definition_view("d1", "custom", CUSTOM).to_dict()
    assert view["states"] == ["a", "b", "c", "we.ird:x-1"]
    assert [c["title"] for c in view["columns"]] == ["a", "Middle", "we.ird:x-1"]
    assert view["columns"][1] == {"title": "Middle", "states": ["b", "c"], "group": True}
    # b->c is one arrow for two events; the wildcard arrow starts at "any state"
    assert [t["edge"] for t in view["transitions"]] == [1, 2, 3, 2, 4]


@pytest.mark.parametrize("tool", [True, False])
def test_arrow_numbers_match_the_drawn_arrows(tool: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not tool:
        real_import = builtins.__import__

        def no_tool(name: str, *args: Any, **kwargs: Any) -> Any:
            if name == "statemachine_engine.tools.diagram":
                raise ImportError(name)
            return real_import(name, *args, **kwargs)

        monkeypatch.setattr(builtins, "__import__", no_tool)
    definition_view.cache_clear()
    view = definition_view("d2", "custom", CUSTOM)
    arrows = _arrows(view.mermaid)
    ids = view.ids
    # Mermaid numbers arrows edge0 ([*] -> initial), edge1, ... in text order.
    assert arrows[0] == f"[*] --> {ids['a']}"
    for t in view.transitions:
        source = definitions.WILDCARD_ID if t["from"] == "*" else ids[t["from"]]
        assert arrows[t["edge"]] == f"{source} --> {ids[t['to']]}"
    assert all(re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", i) for i in ids.values())
    definition_view.cache_clear()


def test_labels_keep_only_safe_characters() -> None:
    label = definitions._label('we"ird <x> {y}')
    assert re.fullmatch(r"[A-Za-z0-9 #;]+", label)
    assert label.startswith("we#34;ird #60;x#62;")


def test_invalid_stored_text_raises_config_error() -> None:
    with pytest.raises(ConfigError):
        definition_view("d3", "bad", "name: x\nstates: [a]\n")
