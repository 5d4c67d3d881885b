"""Diagrams of a big definition by its state groups: an overview with one node per group
(ungrouped states stay nodes of their own) and one diagram per group, with the states it
connects to outside drawn as one node per group.

Each view has the shape the page already draws and highlights (`mermaid`, `ids` from state
to node id, `transitions` with the arrow number of each): a state outside a view maps to
the node that stands for it, so the current state lights its group in the overview.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from statemachine_engine.config.model import WILDCARD

#: Definitions with more states than this and at least one group are drawn by groups.
GROUPED_MIN_STATES = 12
ANY_ID = "any__"
MAX_LABEL_EVENTS = 3
Label = Callable[[str], str]


@dataclass
class _Diagram:
    """Nodes and arrows of one view, in drawing order."""

    nodes: dict[str, str] = field(default_factory=dict)  # node id -> label
    arrows: list[tuple[str, str]] = field(default_factory=list)
    events: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    start: str | None = None
    ends: list[str] = field(default_factory=list)

    def arrow(self, source: str, target: str, event: str) -> None:
        pair = (source, target)
        if pair not in self.events:
            self.arrows.append(pair)
            self.events[pair] = []
        if event not in self.events[pair]:
            self.events[pair].append(event)

    def number(self, pair: tuple[str, str]) -> int | None:
        """Mermaid's number of an arrow: the `[*]` arrow, when drawn, is edge 0."""
        if pair not in self.events:
            return None
        return self.arrows.index(pair) + (1 if self.start is not None else 0)

    def mermaid(self, label: Label) -> str:
        lines = ["stateDiagram-v2"]
        lines += [f'    state "{label(text)}" as {node}' for node, text in self.nodes.items()]
        if self.start is not None:
            lines.append(f"    [*] --> {self.start}")
        for source, target in self.arrows:
            events = self.events[(source, target)]
            shown = ", ".join(events[:MAX_LABEL_EVENTS])
            if len(events) > MAX_LABEL_EVENTS:
                shown += f" +{len(events) - MAX_LABEL_EVENTS}"
            lines.append(f"    {source} --> {target} : {label(shown)}")
        lines += [f"    {node} --> [*]" for node in self.ends]
        return "\n".join(lines) + "\n"


def _group_of(groups: dict[str, list[str]]) -> dict[str, str]:
    return {state: group for group, members in groups.items() for state in members}


def _view(
    diagram: _Diagram,
    ids: dict[str, str],
    transitions: list[dict[str, Any]],
    label: Label,
    extra: dict[str, Any],
) -> dict[str, Any]:
    numbered = []
    for t in transitions:
        source = ANY_ID if t["from"] == WILDCARD else ids[t["from"]]
        numbered.append({**t, "edge": diagram.number((source, ids[t["to"]]))})
    return {"mermaid": diagram.mermaid(label), "ids": ids, "transitions": numbered, **extra}


def group_views(
    states: tuple[str, ...],
    initial: str,
    finals: frozenset[str],
    groups: dict[str, list[str]],
    transitions: list[dict[str, Any]],
    state_ids: dict[str, str],
    label: Label,
) -> dict[str, Any] | None:
    """The overview and per-group views, or None for a definition small enough (or without
    groups) to draw whole. `transitions` are `{"from", "to", "event"}` dicts."""
    if not groups or len(states) <= GROUPED_MIN_STATES:
        return None
    group_of = _group_of(groups)
    group_ids = {g: f"g{i}__" for i, g in enumerate(groups)}

    def node(state: str) -> str:
        group = group_of.get(state)
        return group_ids[group] if group is not None else state_ids[state]

    overview = _Diagram()
    for state in states:
        group = group_of.get(state)
        overview.nodes.setdefault(
            node(state), f"{group} ({len(groups[group])})" if group else state
        )
    _arrows(overview, transitions, node, inner=lambda s, t: node(s) == node(t))
    overview.start = node(initial)
    overview.ends = list(dict.fromkeys(node(s) for s in states if s in finals))
    if any(t["from"] == WILDCARD for t in transitions):
        overview.nodes[ANY_ID] = "any state"
    overview_ids = {s: node(s) for s in states}
    views = {
        "overview": _view(overview, overview_ids, transitions, label, {"group_ids": group_ids}),
        "groups": {},
        "group_of": group_of,
        "group_ids": group_ids,
    }
    for group, members in groups.items():
        inside = set(members)

        def here(state: str, inside: set[str] = inside) -> str:
            return state_ids[state] if state in inside else node(state)

        diagram = _Diagram()
        for state in members:
            diagram.nodes[state_ids[state]] = state
        touching = [
            t
            for t in transitions
            if t["to"] in inside or (t["from"] in inside and t["from"] != WILDCARD)
        ]
        for t in touching:
            for end in (t["from"], t["to"]):
                if end != WILDCARD and end not in inside:
                    outer = group_of.get(end)
                    diagram.nodes.setdefault(node(end), f"{outer} (group)" if outer else end)
        if any(t["from"] == WILDCARD for t in touching):
            diagram.nodes[ANY_ID] = "any state"
        _arrows(diagram, touching, here, inner=lambda s, t: False)
        diagram.start = state_ids[initial] if initial in inside else None
        diagram.ends = [state_ids[s] for s in members if s in finals]
        ids = {s: here(s) for s in states}
        views["groups"][group] = _view(diagram, ids, touching, label, {"group": group})
    return views


def _arrows(
    diagram: _Diagram,
    transitions: list[dict[str, Any]],
    node: Callable[[str], str],
    inner: Callable[[str, str], bool],
) -> None:
    for t in transitions:
        if t["from"] == WILDCARD:
            diagram.arrow(ANY_ID, node(t["to"]), t["event"])
        elif not inner(t["from"], t["to"]):
            diagram.arrow(node(t["from"]), node(t["to"]), t["event"])
