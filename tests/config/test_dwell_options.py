"""`options.max_dwell` and `options.stuck_event` (issue 17 item 3): checked at load, every
error with file:line:col."""

from __future__ import annotations

import pytest

from statemachine_engine.config import parse_definition
from statemachine_engine.config.model import DEFAULT_STUCK_EVENT
from statemachine_engine.core import ActionLoader
from statemachine_engine.errors import ConfigError

BASE = """\
initial_state: idle
states: [idle, busy]
transitions:
  - {from: idle, to: busy, event: go}
  - {from: busy, to: idle, event: stuck}
options:
"""


def parse(options: str) -> object:
    return parse_definition(BASE + options, "worker.yaml", ActionLoader())


def test_max_dwell_and_stuck_event_load() -> None:
    definition = parse("  max_dwell: {busy: 90, idle: 0.5}\n  stuck_event: stalled\n")
    assert definition.max_dwell == {"busy": 90.0, "idle": 0.5}  # type: ignore[attr-defined]
    assert definition.stuck_event == "stalled"  # type: ignore[attr-defined]


def test_defaults() -> None:
    definition = parse("  max_instant_steps: 5\n")
    assert definition.max_dwell == {}  # type: ignore[attr-defined]
    assert definition.stuck_event == DEFAULT_STUCK_EVENT == "stuck"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("options", "line", "column", "message"),
    [
        ("  max_dwell: {bussy: 90}\n", 7, 15, "max_dwell for undeclared state 'bussy'"),
        ("  max_dwell: {busy: 0}\n", 7, 21, "must be a positive number of seconds, found 0"),
        ("  max_dwell: {busy: -5}\n", 7, 21, "must be a positive number of seconds, found -5"),
        ("  max_dwell: {busy: soon}\n", 7, 21, "found 'soon'"),
        ("  max_dwell: {busy: true}\n", 7, 21, "found True"),
        ("  max_dwell: {busy: .inf}\n", 7, 21, "found inf"),
        ("  max_dwell: [busy]\n", 7, 14, "`max_dwell:` must be a mapping"),
        ("  stuck_event: 'a b'\n", 7, 16, "`stuck_event:` must be an event name"),
        ("  max_dwel: {busy: 5}\n", 7, 3, "unknown option 'max_dwel'"),
    ],
)
def test_bad_options_point_at_the_offending_node(
    options: str, line: int, column: int, message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        parse(options)
    error = info.value
    assert (error.file, error.line, error.column) == ("worker.yaml", line, column)
    assert message in error.message, error.message
    assert "\n" not in str(error)


def test_unknown_state_hint() -> None:
    with pytest.raises(ConfigError) as info:
        parse("  max_dwell: {bussy: 90}\n")
    assert info.value.hint == "did you mean 'busy'?"
    assert str(info.value).startswith("worker.yaml:7:15: max_dwell for undeclared state")
