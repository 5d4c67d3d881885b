"""The released package's defaults (issue 15, item 3), each restored, and the released
README's `context_map` pattern, which stalled while a log line named a key not yet set."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from statemachine_engine.database.sqlite import SQLiteStore

from ..conftest import StartMachine, Until


def _path(store: SQLiteStore, name: str) -> list[tuple[str | None, str, str | None]]:
    rows = sorted(store.history(machine=name, limit=1000), key=lambda r: r.step)
    return [(r.from_state, r.to_state, r.event) for r in rows]


async def test_start_fires_at_boot(machine: StartMachine, until: Until) -> None:
    m = await machine(
        """
initial_state: booting
actions:
  booting: [{type: log, message: skipped, success: other}]
transitions:
  - {from: booting, to: ready, event: start}
  - {from: booting, to: wrong, event: other}
  - {from: ready, to: done, event: finish}
"""
    )
    await m.engine.wait_for_state("ready")
    assert _path(m.store, "worker")[-1] == ("booting", "ready", "start")


async def test_sleep_returns_wake_up_when_handled(machine: StartMachine) -> None:
    m = await machine(
        """
initial_state: napping
actions:
  napping: [{type: sleep, seconds: 0.01}]
  awake: [{type: sleep, seconds: 0.01}, {type: log, message: after, success: go}]
transitions:
  - {from: napping, to: awake, event: wake_up}
  - {from: awake, to: done, event: go}
"""
    )
    assert await m.task == 0  # awake has no wake_up transition: the next action runs
    assert [step[2] for step in _path(m.store, "worker")[-2:]] == ["wake_up", "go"]


@pytest.mark.parametrize(
    ("action", "event"),
    [
        ("{type: set_context, key: k, value: 1}", "success"),
        ("{type: add_to_list, list_key: l, value: 1}", "success"),
        ("{type: pop_from_list, list_key: items}", "item_popped"),
        ("{type: log, message: hi}", "continue"),
        ("{type: activity_log, message: hi}", "continue"),
        ("{type: clear_events}", "no_events_to_clear"),
    ],
)
async def test_released_success_events_fire_when_handled(
    machine: StartMachine, action: str, event: str
) -> None:
    m = await machine(
        f"""
initial_state: working
context: {{items: [1]}}
actions:
  working: [{action}, {{type: log, message: never, success: wrong}}]
transitions:
  - {{from: working, to: done, event: {event}}}
  - {{from: working, to: bad, event: wrong}}
"""
    )
    assert await m.task == 0
    assert _path(m.store, "worker")[-1] == ("working", "done", event)


async def test_released_success_events_are_silent_without_a_transition(
    machine: StartMachine, caplog: pytest.LogCaptureFixture
) -> None:
    m = await machine(
        """
initial_state: working
actions:
  working:
    - {type: set_context, key: k, value: 1}
    - {type: log, message: "k={k}"}
    - {type: sleep, seconds: 0.01}
    - {type: log, message: end, success: go}
transitions:
  - {from: working, to: done, event: go}
"""
    )
    with caplog.at_level(logging.WARNING):
        assert await m.task == 0
    assert not [r for r in caplog.records if "no transition" in r.getMessage()]


async def test_claim_job_returns_claimed(machine: StartMachine, store: SQLiteStore) -> None:
    store.add_job("task", job_id="c1")
    m = await machine(
        """
initial_state: claiming
actions:
  claiming: [{type: claim_job, job_id: c1}]
  holding: [{type: complete_job, job_id: c1, success: done}]
transitions:
  - {from: claiming, to: holding, event: claimed}
  - {from: holding, to: finished, event: done}
"""
    )
    assert await m.task == 0
    assert store.get_job("c1").status == "completed"  # type: ignore[union-attr]


async def test_clear_events_honours_event_types_and_target(
    machine: StartMachine, store: SQLiteStore
) -> None:
    for target, kind in [("other", "stale"), ("other", "fresh"), ("worker", "stale")]:
        store.send_event(target, kind)
    m = await machine(
        """
initial_state: clearing
actions:
  clearing: [{type: clear_events, event_types: [stale], target_machine: other}]
transitions:
  - {from: clearing, to: done, event: events_cleared}
"""
    )
    assert await m.task == 0
    left = {(e.target_machine, e.event_type) for e in store.list_events(status="pending")}
    assert left == {("other", "fresh"), ("worker", "stale")}


async def test_clear_events_without_types_clears_all_and_says_so_once(
    machine: StartMachine, store: SQLiteStore, caplog: pytest.LogCaptureFixture
) -> None:
    """1.0 cleared nothing without `event_types`; 2.0 clears every type, with one WARNING."""
    for kind in ("stale", "fresh"):
        store.send_event("sweeper", kind)
    m = await machine(
        """
initial_state: clearing
actions:
  clearing: [{type: clear_events}]
transitions:
  - {from: clearing, to: done, event: events_cleared}
""",
        "sweeper",
    )
    assert await m.task == 0
    assert store.list_events(target="sweeper", status="pending") == []
    warned = [r.getMessage() for r in caplog.records if "SM125" in r.getMessage()]
    assert len(warned) == 1 and "cleared 2 pending events of every type" in warned[0], warned


async def test_fallback_in_bash_is_not_a_pipe(
    machine: StartMachine, tmp_path: Path, until: Until
) -> None:
    out = tmp_path / "out.txt"
    m = await machine(
        f"""
initial_state: running
context: {{name: null, fallback: "a b|c"}}
actions:
  running:
    - {{type: bash, command: "printf %s {{name|fallback}} > {out}", success: ok}}
transitions:
  - {{from: running, to: done, event: ok}}
"""
    )
    assert await m.task == 0
    assert out.read_text() == "a b|c"


async def test_context_map_pattern_logs_a_key_not_yet_set(
    machine: StartMachine,
    store: SQLiteStore,
    tmp_path: Path,
    until: Until,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The released README's voice pattern: `transcribed` promotes payload.user_utterance
    to a lasting context key; the listening state logs it before the first event set it."""
    reply = tmp_path / "reply.txt"
    caplog.set_level(logging.INFO)
    m = await machine(
        f"""
initial_state: listening
events:
  transcribed:
    context_map: {{user_utterance: payload.user_utterance}}
  replied: {{}}
actions:
  listening:
    - {{type: log, message: "last heard: {{user_utterance}}"}}
  replying:
    - {{type: bash, command: "printf %s {{user_utterance}} > {reply}", success: replied}}
transitions:
  - {{from: listening, to: replying, event: transcribed}}
  - {{from: replying, to: listening, event: replied}}
"""
    )
    await m.engine.wait_parked()
    store.send_event("worker", "transcribed", {"user_utterance": "hello; there"})
    m.engine.wake()
    await until(lambda: ("replying", "listening", "replied") in _path(store, "worker"), 30)
    assert reply.read_text() == "hello; there"
    lines = [r.getMessage() for r in caplog.records]
    assert any("last heard: {user_utterance}" in line for line in lines)
    assert any("{user_utterance} not set, written as is" in line for line in lines)
    await until(lambda: any("last heard: hello; there" in r.getMessage() for r in caplog.records))
