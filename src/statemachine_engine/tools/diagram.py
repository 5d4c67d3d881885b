"""Mermaid `stateDiagram-v2` for a machine definition: one pure function, same input, same bytes.

Transitions between the same two states share one arrow labelled with all their events;
wildcard transitions start from one dashed "any state" node instead of every state;
`timeout(N)` transitions are labelled with a timer mark; the initial state gets an arrow
from `[*]`, final states one to `[*]`; declared state groups become composite states.
The UI uses the same ids (`state_id`) to highlight the current state.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

from statemachine_engine.config.model import WILDCARD, MachineDefinition

WILDCARD_ID = "any__"
TIMER_MARK = "\u23f1"
_ID_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_RESERVED = frozenset(
    {
        "state",
        "end",
        "note",
        "direction",
        "classdef",
        "class",
        "as",
        "left",
        "right",
        "of",
        "over",
        "click",
        "style",
        "default",
        "tb",
        "bt",
        "lr",
        "rl",
        "hide",
        "empty",
        "description",
        "statediagram",
        "statediagram-v2",
        "accdescr",
        "acctitle",
    }
)
_UNSAFE_LABEL = re.compile(r"[^A-Za-z0-9_ ().,*/\-=+\u23f1]")


def state_ids(definition: MachineDefinition) -> dict[str, str]:
    """The Mermaid id of every state: its name when that is a safe identifier, else
    `s_<index>` (the state's position in `states`), so ids are stable and never clash."""
    ids: dict[str, str] = {}
    for index, name in enumerate(definition.states):
        safe = _ID_RE.fullmatch(name) and name.lower() not in _RESERVED and not name.endswith("__")
        ids[name] = name if safe and not name.startswith("s_") else f"s_{index}"
    return ids


def state_id(definition: MachineDefinition, state: str) -> str:
    """The Mermaid id `mermaid(definition)` uses for `state`."""
    return state_ids(definition)[state]


def _label(text: str) -> str:
    """Text safe inside a Mermaid label: characters the grammar reserves become `_`."""
    return _UNSAFE_LABEL.sub("_", text)


def _event_label(event: str, timeout: float | None) -> str:
    if timeout is not None:
        return f"{TIMER_MARK} {event}"
    return event


def mermaid(definition: MachineDefinition, ids: Mapping[str, str] | None = None) -> str:
    """The `stateDiagram-v2` text of `definition` (ends with a newline). `ids` overrides the
    Mermaid id of each state (every state must have one); default `state_ids(definition)`."""
    ids = state_ids(definition) if ids is None else ids
    lines = ["---", f"title: {json.dumps(definition.name, ensure_ascii=False)}", "---"]
    lines += [
        "stateDiagram-v2",
        "    classDef initial font-weight:bold",
        "    classDef final stroke-width:3px",
        "    classDef wildcard stroke-dasharray:4 4",
    ]
    grouped: set[str] = set()
    for index, (group, members) in enumerate(definition.groups.items()):
        inside = [m for m in members if m in ids and m not in grouped]
        if not inside:
            continue
        lines.append(f'    state "{_label(group)}" as group_{index}__ {{')
        for member in inside:
            grouped.add(member)
            lines.append(_declare(member, ids[member], "        "))
        lines.append("    }")
    for state in definition.states:
        if state not in grouped:
            lines.append(_declare(state, ids[state], "    "))
    has_wildcard = any(t.source == WILDCARD for t in definition.transitions)
    if has_wildcard:
        lines.append(f'    state "any state" as {WILDCARD_ID}')
    lines.append(f"    [*] --> {ids[definition.initial_state]}")
    edges: dict[tuple[str, str], list[str]] = {}
    for transition in definition.transitions:
        source = WILDCARD_ID if transition.source == WILDCARD else ids[transition.source]
        label = _event_label(transition.event, transition.timeout)
        labels = edges.setdefault((source, ids[transition.target]), [])
        if label not in labels:
            labels.append(label)
    for (source, target), labels in edges.items():
        lines.append(f"    {source} --> {target}: {_label(', '.join(labels))}")
    finals = [s for s in definition.states if definition.is_final(s)]
    for state in finals:
        lines.append(f"    {ids[state]} --> [*]")
    lines.append(f"    class {ids[definition.initial_state]} initial")
    if finals:
        lines.append(f"    class {','.join(ids[s] for s in finals)} final")
    if has_wildcard:
        lines.append(f"    class {WILDCARD_ID} wildcard")
    return "\n".join(lines) + "\n"


def _declare(state: str, sid: str, indent: str) -> str:
    if sid == state and _ID_RE.fullmatch(state):
        return f"{indent}{sid}"
    return f'{indent}state "{_label(state)}" as {sid}'


def markdown(definition: MachineDefinition, diagram: str | None = None) -> str:
    """A Markdown page GitHub renders: title, description, the diagram in a mermaid block."""
    diagram = mermaid(definition) if diagram is None else diagram
    parts = [f"# {definition.name}", ""]
    description = definition.metadata.get("description")
    if isinstance(description, str) and description.strip():
        parts += [" ".join(description.split()), ""]
    parts += [
        f"Generated from `{Path(definition.source).name}` by `statemachine-fsm`;"
        " do not edit by hand.",
        "",
        "```mermaid",
        diagram.rstrip("\n"),
        "```",
        "",
    ]
    return "\n".join(parts)


def write_diagrams(definition: MachineDefinition, out_dir: Path) -> tuple[Path, Path]:
    """Write `<out>/<config-name>/<config-name>.mmd` and `.md`; returns both paths."""
    name = Path(definition.source).stem
    target = out_dir / name
    target.mkdir(parents=True, exist_ok=True)
    diagram = mermaid(definition)
    mmd = target / f"{name}.mmd"
    md = target / f"{name}.md"
    mmd.write_text(diagram, encoding="utf-8")
    md.write_text(markdown(definition, diagram), encoding="utf-8")
    return mmd, md
