"""What an action declares about itself: its parameters and the events it returns.

Each action class carries one `Declaration`; the loader checks parameters against it, the
linter reads the events from it, and the JSON Schema and the actions reference are built from
it. Custom actions that declare nothing are not checked (any parameter, any event).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ERROR_EVENT = "error"

#: Keys every action accepts: `description`, the released package's polling flags (our
#: waiting is event-driven, so they change nothing) and `error`, which renames the event an
#: exception becomes.
COMMON_KEYS = ("description", "repeatable", "run_policy", "error")

#: Kinds of parameter values and what each accepts (a string holding a placeholder is
#: accepted for every kind: it is checked when rendered at run time).
KINDS = ("text", "name", "number", "int", "bool", "list", "map", "names", "any", "event")


@dataclass(frozen=True)
class Param:
    """One parameter: name, kind of value, whether it is required, a line of documentation.
    `failure_map` marks a mapping whose values are failure events (bash `error_mappings`)."""

    name: str
    kind: str = "any"
    required: bool = False
    doc: str = ""
    default: Any = None
    failure_map: bool = False


IF_HANDLED = "returned only when the state has a transition on it (the released default)"
"""The documentation line of an `Emits(..., if_handled=True)` default."""


@dataclass(frozen=True)
class Emits:
    """An event the action returns: named by parameter `key` (so YAML can rename it), else
    `default`. A default of None means: returned only when configured (otherwise the action
    returns another of its events, or, for `success`, nothing). `failure` marks a failure
    outcome. `if_handled`: the default is returned only when the state has a transition on
    it, else nothing (the released package's defaults, which were silent without one)."""

    key: str
    default: str | None
    failure: bool = False
    doc: str = ""
    if_handled: bool = False


@dataclass(frozen=True)
class Declaration:
    """Everything an action says about itself. `params` None means undeclared (unchecked);
    `emits` None means its events are unknown. `one_of` lists groups of parameters of which
    one must be given; `failure_events` are fixed event names that are failures.
    `other_events`: it also returns event names it cannot list (received events);
    `takes_input`: it takes work from outside (a claim); `instant` mirrors the class flag;
    `renders_missing`: a placeholder without a value is written as is with a WARNING (log
    lines), so an unknown root is a lint warning (SM124), not a load error."""

    params: tuple[Param, ...] | None = None
    emits: tuple[Emits, ...] | None = None
    one_of: tuple[tuple[str, ...], ...] = ()
    failure_events: frozenset[str] = frozenset()
    other_events: bool = False
    takes_input: bool = False
    instant: bool = False
    renders_missing: bool = False
    all_emits: tuple[Emits, ...] = field(init=False)

    def __post_init__(self) -> None:
        emits = tuple(self.emits or ())
        if not any(e.key == "error" for e in emits):
            emits += (Emits("error", ERROR_EVENT, failure=True, doc="the action failed"),)
        object.__setattr__(self, "all_emits", emits)

    @property
    def keys(self) -> tuple[str, ...] | None:
        """Every parameter name the action accepts, or None when it accepts anything."""
        if self.params is None:
            return None
        names = [p.name for p in self.params] + [e.key for e in self.all_emits]
        return tuple(dict.fromkeys([*names, *COMMON_KEYS]))


def _event_name(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def explicit_events(
    declaration: Declaration, params: Mapping[str, Any]
) -> list[tuple[str, str, bool]]:
    """(parameter, event, failure) for each event the parameters name explicitly."""
    found: list[tuple[str, str, bool]] = []
    for emits in declaration.all_emits:
        name = _event_name(params.get(emits.key))
        if name is not None:
            found.append((emits.key, name, emits.failure))
    for param in declaration.params or ():
        mapping = params.get(param.name)
        if param.failure_map and isinstance(mapping, Mapping):
            for code, event in mapping.items():
                name = _event_name(event)
                if name is not None:
                    found.append((f"{param.name}.{code}", name, True))
    return found


def events_of(
    declaration: Declaration, params: Mapping[str, Any]
) -> tuple[frozenset[str], frozenset[str]] | None:
    """(success events, failure events) the action may return with these parameters, or
    None when the action does not declare its events."""
    if declaration.emits is None:
        return None
    success: set[str] = set()
    failure: set[str] = set(declaration.failure_events)
    for emits in declaration.all_emits:
        name = _event_name(params.get(emits.key, emits.default))
        if name is not None:
            (failure if emits.failure else success).add(name)
    for _, name, is_failure in explicit_events(declaration, params):
        (failure if is_failure else success).add(name)
    return frozenset(success), frozenset(failure)


def may_return_nothing(declaration: Declaration, params: Mapping[str, Any]) -> bool:
    """True when the action may return no event (its `success` defaults to nothing, or to
    an event returned only when the state handles it)."""
    if declaration.emits is None:
        return True
    return any(
        e.key == "success"
        and (e.default is None or e.if_handled)
        and _event_name(params.get(e.key)) is None
        for e in declaration.all_emits
    )


def failure_events(declaration: Declaration, params: Mapping[str, Any]) -> frozenset[str]:
    """Event names that are failures when this action returns them as plain strings: its
    declared failure events, unless the same name is also one of its success events."""
    names = set(declaration.failure_events)
    for emits in declaration.all_emits:
        name = _event_name(params.get(emits.key, emits.default))
        if emits.failure and name is not None:
            names.add(name)
    for _, name, is_failure in explicit_events(declaration, params):
        if is_failure:
            names.add(name)
    known = events_of(declaration, params)
    success = known[0] if known is not None else frozenset()
    return frozenset(names - success)


def has_placeholder(value: Any) -> bool:
    return isinstance(value, str) and "{" in value


def kind_problem(kind: str, value: Any) -> str | None:
    """Why `value` does not fit `kind` (a description of what was expected), or None."""
    if value is None or kind == "any" or has_placeholder(value):
        return None
    if kind in ("text", "name", "event"):
        ok = isinstance(value, str) and bool(value) if kind != "text" else _scalar(value)
        return (
            None if ok else {"text": "a string", "name": "a name", "event": "an event name"}[kind]
        )
    if kind == "number":
        return None if _number(value) else "a number"
    if kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
        return None if ok or (isinstance(value, str) and value.strip().isdigit()) else "an integer"
    if kind == "bool":
        return None if isinstance(value, bool) else "true or false"
    if kind == "list":
        return None if isinstance(value, list | tuple) else "a list"
    if kind == "names":
        ok = isinstance(value, str) or (
            isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
        )
        return None if ok else "a name or a list of names"
    if kind == "map":
        return None if isinstance(value, Mapping) else "a mapping"
    raise ValueError(f"unknown parameter kind {kind!r}")


def _scalar(value: Any) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return math.isfinite(value)
    if isinstance(value, str):
        try:
            return math.isfinite(float(value))
        except ValueError:
            return False
    return False
