"""`options.max_dwell` and `options.stuck_event`: how long a machine may stay in a state before
it is told it is stuck (DESIGN §13.6)."""

from __future__ import annotations

import math

from statemachine_engine.config.model import DEFAULT_STUCK_EVENT, MIN_TIMEOUT
from statemachine_engine.config.problems import Problems, did_you_mean
from statemachine_engine.config.yamlsource import YamlMap, YamlStr
from statemachine_engine.names import name_problem

DWELL_OPTION_KEYS = ("max_dwell", "stuck_event")
_HINT = "write `max_dwell: {processing: 3600}` (state -> seconds)"


def parse_max_dwell(root: YamlMap, states: list[str], problems: Problems) -> dict[str, float]:
    """`options: {max_dwell: {STATE: seconds}}`: a declared state and a positive number each."""
    options = root.get("options")
    value = options.get("max_dwell") if isinstance(options, YamlMap) else None
    if value is None:
        return {}
    assert isinstance(options, YamlMap)
    if not isinstance(value, YamlMap):
        problems.add(options.where("max_dwell"), "`max_dwell:` must be a mapping", _HINT)
        return {}
    result: dict[str, float] = {}
    for state, seconds in value.items():
        if not isinstance(state, str) or state not in states:
            found = did_you_mean(str(state), states)
            problems.add(
                value.where_key(state),
                f"max_dwell for undeclared state {str(state)!r}",
                found or _HINT,
            )
            continue
        number = isinstance(seconds, int | float) and not isinstance(seconds, bool)
        if not number or not math.isfinite(seconds) or seconds < MIN_TIMEOUT:
            problems.add(
                value.where(state),
                f"max_dwell of state '{state}' must be a positive number of seconds,"
                f" found {seconds!r}",
                _HINT,
            )
            continue
        result[state] = float(seconds)
    return result


def parse_stuck_event(root: YamlMap, problems: Problems) -> str:
    """`options: {stuck_event: NAME}`: the event a state that outlasts its max_dwell fires."""
    options = root.get("options")
    value = options.get("stuck_event") if isinstance(options, YamlMap) else None
    if value is None:
        return DEFAULT_STUCK_EVENT
    assert isinstance(options, YamlMap)
    problem = name_problem(value) if isinstance(value, YamlStr) else "not a string"
    if problem is not None:
        problems.add(
            options.where("stuck_event"),
            f"`stuck_event:` must be an event name, found {value!r}: {problem}",
            "write `stuck_event: stalled`",
        )
        return DEFAULT_STUCK_EVENT
    return str(value)
