"""Input limits (issue 13 item 9): big definitions validate in linear time, deep nesting and
tiny timers are refused at once, and every name (state, event) follows one rule."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from statemachine_engine.config import parse_definition
from statemachine_engine.config.model import MIN_TIMEOUT
from statemachine_engine.core import ActionLoader
from statemachine_engine.errors import ConfigError
from statemachine_engine.names import NAME_MAX
from statemachine_engine.tools.validate import validate

pytestmark = pytest.mark.serial  # CPU and memory budgets

CATALOG = ActionLoader()


def big_machine(transitions: int) -> str:
    """A chain of states, two transitions each (one forward, one self-loop), one action each."""
    count = transitions // 2
    states = [f"s{i}" for i in range(count)]
    lines = [
        "name: big",
        "initial_state: s0",
        "metadata: {machine_name: big}",
        "states: [" + ", ".join(states) + "]",
        "events: [go, again]",
        "actions:",
    ]
    lines += [f"  s{i}: [{{type: log, message: hi, success: go}}]" for i in range(count)]
    lines.append("transitions:")
    for i in range(count):
        target = f"s{i + 1}" if i + 1 < count else f"s{i}"
        lines.append(f"  - {{from: s{i}, to: {target}, event: go}}")
        lines.append(f"  - {{from: s{i}, to: s{i}, event: again}}")
    return "\n".join(lines) + "\n"


def _validate_cpu(path: Path, transitions: int) -> float:
    path.write_text(big_machine(transitions))
    started = time.process_time()  # CPU time: waiting for the CPU does not count
    report = validate([path])
    elapsed = time.process_time() - started
    assert not [f for f in report.findings if f.severity == "error"], report.findings[:3]
    return elapsed


def test_ten_thousand_transitions_validate_in_linear_time(tmp_path: Path) -> None:
    """Linear means 4x the transitions cost about 4x the CPU (quadratic would be 16x). The
    ratio holds under coverage and on a busy host, where absolute CPU times inflate."""
    small = _validate_cpu(tmp_path / "small.yaml", 2_500)
    large = _validate_cpu(tmp_path / "big.yaml", 10_000)
    assert large < 8 * small, f"2,500 transitions: {small:.2f} s of CPU; 10,000: {large:.2f} s"
    assert large < 60, f"10,000 transitions took {large:.1f} s of CPU to validate"


def test_outgoing_and_is_final_come_from_an_index() -> None:
    definition = parse_definition(big_machine(400), "big.yaml", CATALOG)
    assert [t.event for t in definition.outgoing("s3")] == ["go", "again"]
    assert definition.is_final("s0") is False
    assert definition.outgoing("s3") is definition.outgoing("s3")


@pytest.mark.parametrize("opener,closer", [("[", "]"), ("{a: ", "}")])
def test_deep_nesting_is_refused_fast(opener: str, closer: str) -> None:
    text = "initial_state: a\nstates: [a]\ncontext: {x: " + opener * 5000 + closer * 5000 + "}\n"
    started = time.process_time()
    with pytest.raises(ConfigError) as info:
        parse_definition(text, "deep.yaml", CATALOG)
    elapsed = time.process_time() - started
    assert "nesting" in str(info.value)
    assert str(info.value).startswith("deep.yaml:3:")
    # 0.5 s of CPU on the 2-core development machine, 1.7 s under coverage on a loaded host;
    # the bound catches a super-linear refusal (minutes), not a busy host.
    assert elapsed < 5.0, f"refusing 5,000 levels took {elapsed:.2f} s of CPU"


def test_deep_block_nesting_is_refused_fast() -> None:
    text = "initial_state: a\nstates: [a]\ncontext:\n"
    text += "".join(" " * (i + 1) + f"k{i}:\n" for i in range(1000))
    started = time.process_time()
    with pytest.raises(ConfigError, match="nesting"):
        parse_definition(text, "deep.yaml", CATALOG)
    assert time.process_time() - started < 5.0  # see test_deep_nesting_is_refused_fast


TIMER = """\
initial_state: a
states: [a, b]
transitions:
  - {from: a, to: a, event: "timeout(%s)"}
  - {from: a, to: b, event: done}
"""


@pytest.mark.parametrize("seconds", ["0.0000001", "0.0009", "0"])
def test_timer_below_the_minimum_is_a_load_error(seconds: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_definition(TIMER % seconds, "t.yaml", CATALOG)
    message = str(info.value)
    assert message.startswith("t.yaml:4:")
    assert f"{MIN_TIMEOUT:g}" in message


@pytest.mark.parametrize("seconds", ["0.001", "1", "3600"])
def test_timer_at_or_above_the_minimum_loads(seconds: str) -> None:
    definition = parse_definition(TIMER % seconds, "t.yaml", CATALOG)
    assert definition.timeouts("a")[0].timeout == float(seconds)


BAD_NAMES = {
    "newline": '"a\\nb"',
    "nul": '"a\\0b"',
    "rtl override": '"a\\u202eb"',
    "slash": "a/b",
    "space": '"a b"',
    "too long": "x" * (NAME_MAX + 1),
    "one megabyte": "y" * (1024 * 1024),
}


@pytest.mark.parametrize("label", sorted(BAD_NAMES))
def test_bad_state_names_are_refused_with_position(label: str) -> None:
    text = f"initial_state: a\nstates:\n  - a\n  - {BAD_NAMES[label]}\n"
    started = time.process_time()
    with pytest.raises(ConfigError) as info:
        parse_definition(text, "n.yaml", CATALOG)
    message = str(info.value)
    assert message.startswith("n.yaml:4:5: invalid state name"), message[:200]
    assert "\n" not in message and "\x00" not in message and "\u202e" not in message
    assert len(message) < 400
    # ~0.6 s of CPU for the megabyte on the 2-core development machine, 2.7 s seen under
    # coverage on a loaded host; the bound catches a quadratic scan (minutes), not load.
    assert time.process_time() - started < 8


@pytest.mark.parametrize("label", ["newline", "nul", "slash", "too long"])
def test_bad_event_names_are_refused_with_position(label: str) -> None:
    text = (
        "initial_state: a\nstates: [a, b]\n"
        f"transitions:\n  - from: a\n    to: b\n    event: {BAD_NAMES[label]}\n"
    )
    with pytest.raises(ConfigError) as info:
        parse_definition(text, "n.yaml", CATALOG)
    assert str(info.value).startswith("n.yaml:6:12: invalid event name"), str(info.value)[:200]


def test_bad_names_in_transitions_without_states_list_are_refused() -> None:
    text = 'initial_state: a\ntransitions:\n  - {from: a, to: "b\\nc", event: go}\n'
    with pytest.raises(ConfigError, match=r"^n\.yaml:3:.*invalid state name"):
        parse_definition(text, "n.yaml", CATALOG)


def test_names_that_follow_the_rule_load() -> None:
    text = (
        "initial_state: Start-1\nstates: [Start-1, v2.done, 'step:3', x_y]\n"
        "events: [go.on, 'a:b']\n"
        "transitions:\n  - {from: Start-1, to: v2.done, event: go.on}\n"
        "  - {from: '*', to: 'step:3', event: 'a:b'}\n"
    )
    definition = parse_definition(text, "n.yaml", CATALOG)
    assert definition.states == ("Start-1", "v2.done", "step:3", "x_y")
