"""What the page draws for a definition: Mermaid text, state ids, columns for the Kanban board.

The definition is rebuilt from the YAML text stored with the machine (by digest), so the UI
draws the version an instance actually runs. Custom action types are accepted as they are:
the UI only needs states, transitions and groups.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

from statemachine_engine.actions.params import Declaration
from statemachine_engine.config.loader import parse_definition
from statemachine_engine.config.model import WILDCARD, MachineDefinition, Transition
from statemachine_engine.monitoring.groupview import group_views
from statemachine_engine.tools.diagram import mermaid


class _AnyName(frozenset[str]):
    """A name set that contains every action type (the UI does not run actions)."""

    def __contains__(self, item: object) -> bool:
        return True


class _PermissiveCatalog:
    def names(self) -> frozenset[str]:
        return _AnyName()

    def provides(self, action_type: str) -> frozenset[str] | None:
        return None

    def declaration(self, action_type: str) -> Declaration:
        return Declaration()


_UNSAFE = re.compile(r"[^A-Za-z0-9 _.,:/()+=@-]")


def _label(text: str) -> str:
    """Mermaid-safe label text: anything outside a small set becomes an entity code."""
    return _UNSAFE.sub(lambda m: f"#{ord(m.group())};", text)


@dataclass(frozen=True)
class DefinitionView:
    """A definition as the page needs it."""

    digest: str
    name: str
    states: tuple[str, ...]
    initial_state: str
    groups: dict[str, list[str]]
    template: bool
    ids: dict[str, str]
    mermaid: str
    transitions: list[dict[str, Any]]
    finals: frozenset[str] = frozenset()

    def to_dict(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "name": self.name,
            "states": list(self.states),
            "initial_state": self.initial_state,
            "groups": self.groups,
            "template": self.template,
            "ids": self.ids,
            "mermaid": self.mermaid,
            "transitions": self.transitions,
            "columns": self.columns(),
            "views": group_views(
                self.states,
                self.initial_state,
                self.finals,
                self.groups,
                self.transitions,
                self.ids,
                _label,
            ),
        }

    def columns(self) -> list[dict[str, Any]]:
        """Kanban columns: one per state group (ungrouped states each get their own)."""
        grouped = {s: g for g, members in self.groups.items() for s in members}
        columns: list[dict[str, Any]] = []
        seen: set[str] = set()
        for state in self.states:
            group = grouped.get(state)
            if group is None:
                columns.append({"title": state, "states": [state], "group": False})
            elif group not in seen:
                seen.add(group)
                columns.append({"title": group, "states": self.groups[group], "group": True})
        return columns


WILDCARD_ID = "any__"


def _pair(t: Transition, ids: dict[str, str]) -> tuple[str, str]:
    return (WILDCARD_ID if t.source == WILDCARD else ids[t.source], ids[t.target])


def _edges(definition: MachineDefinition, ids: dict[str, str]) -> list[tuple[str, str]]:
    """The arrows in drawing order: one per (source, target) pair, like the diagram tool."""
    pairs: list[tuple[str, str]] = []
    for t in definition.transitions:
        pair = _pair(t, ids)
        if pair not in pairs:
            pairs.append(pair)
    return pairs


def mermaid_text(definition: MachineDefinition, ids: dict[str, str]) -> str:
    """A `stateDiagram-v2` of the definition, from the project's diagram tool when it is
    there (same ids, so the UI and `statemachine-fsm` draw the same thing), else a minimal
    one here with the same arrow order: Mermaid numbers arrows `edge1..` in that order after
    the `[*]` arrow, which is how the page finds the last transition's arrow."""
    try:
        return mermaid(definition, ids)
    except TypeError:
        pass
    lines = ["stateDiagram-v2"]
    for state in definition.states:
        lines.append(f'    state "{_label(state)}" as {ids[state]}')
    if any(t.source == WILDCARD for t in definition.transitions):
        lines.append(f'    state "any state" as {WILDCARD_ID}')
    lines.append(f"    [*] --> {ids[definition.initial_state]}")
    for source, target in _edges(definition, ids):
        events: list[str] = []
        for t in definition.transitions:
            if _pair(t, ids) == (source, target) and t.event not in events:
                events.append(t.event)
        lines.append(f"    {source} --> {target} : {_label(', '.join(events))}")
    for state in definition.states:
        if definition.is_final(state):
            lines.append(f"    {ids[state]} --> [*]")
    return "\n".join(lines) + "\n"


@functools.lru_cache(maxsize=256)
def definition_view(digest: str, name: str, text: str) -> DefinitionView:
    """Rebuild a stored definition; raises ConfigError when the text no longer validates."""
    definition = parse_definition(text, name or digest[:12], _PermissiveCatalog())
    ids = {state: f"s{i}__" for i, state in enumerate(definition.states)}
    edges = _edges(definition, ids)
    return DefinitionView(
        digest=digest,
        name=definition.name,
        states=definition.states,
        initial_state=definition.initial_state,
        groups={g: list(members) for g, members in definition.groups.items()},
        template=definition.template,
        ids=ids,
        mermaid=mermaid_text(definition, ids),
        transitions=[
            {
                "from": t.source,
                "to": t.target,
                "event": t.event,
                "edge": 1 + edges.index(_pair(t, ids)),
            }
            for t in definition.transitions
        ],
        finals=frozenset(s for s in definition.states if definition.is_final(s)),
    )
