"""Timers and dwell limits while an action runs (issue 17 item 3, DESIGN §13.6), in-process on
a VirtualClock: hours of waiting take milliseconds."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from statemachine_engine.clock import VirtualClock
from statemachine_engine.database.sqlite import SQLiteStore

StartMachine = Callable[..., Awaitable[Any]]

HOUR = 3600.0


def history(store: SQLiteStore, name: str) -> list[tuple[str | None, str | None, str | None]]:
    return [(r.from_state, r.to_state, r.event) for r in reversed(store.history(machine=name))]


def stuck_rows(store: SQLiteStore, name: str) -> list[dict[str, Any]]:
    return [
        r.payload
        for r in store.realtime_since(0, 10_000)
        if r.kind == "stuck" and r.machine_name == name
    ]


async def poll(predicate: Callable[[], object], timeout: float = 5.0) -> None:
    """Wait until `predicate()` holds, re-checked every millisecond (for store rows)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.001)


async def running(m: Any, clock: VirtualClock) -> None:
    """Wait until the machine's action is running (asleep on the virtual clock)."""
    deadline = asyncio.get_running_loop().time() + 5
    while m.engine._current is None or not clock._sleepers:
        assert asyncio.get_running_loop().time() < deadline, m.engine.snapshot()
        await asyncio.sleep(0.001)


def asleep_until(clock: VirtualClock, at: float) -> bool:
    """Whether something still sleeps on the clock until `at` (the action's own sleep)."""
    return any(deadline == at for deadline, _ in clock._sleepers)


TIMER = """
name: timer
initial_state: working
actions:
  working:
    - {type: sleep, seconds: 86400, success: done}
transitions:
  - {from: working, to: finished, event: done}
  - {from: working, to: timed_out, event: "timeout(7200)"}
  - {from: timed_out, to: working, event: retry}
"""


async def test_timeout_fires_while_an_action_runs_and_cancels_it(
    machine: StartMachine, store: SQLiteStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="statemachine_engine")
    clock = VirtualClock()
    start = clock.now()
    m = await machine(TIMER, "timer", clock=clock)
    await running(m, clock)
    assert asleep_until(clock, start + 86400)
    clock.advance(7199.0)
    for _ in range(20):  # a second short of the timer nothing happens
        await asyncio.sleep(0.001)
    assert m.engine.state == "working" and m.engine._current is not None
    clock.advance(1.0)
    await m.engine.wait_for_state("timed_out")
    assert history(store, "timer")[-1] == ("working", "timed_out", "timeout(7200)")
    last_error = m.engine.context["last_error"]
    assert "timeout(7200) fired in state 'working'" in last_error
    assert "SleepAction was cancelled" in last_error
    await m.engine.wait_parked()
    assert not asleep_until(clock, start + 86400)  # the sleep was cancelled, not left behind
    assert any("timeout(7200)" in r.getMessage() for r in caplog.records)


async def test_an_action_that_ends_before_the_timer_wins(
    machine: StartMachine, store: SQLiteStore
) -> None:
    text = TIMER.replace("86400", "60")
    clock = VirtualClock()
    m = await machine(text, "timer", clock=clock)
    await running(m, clock)
    clock.advance(60.0)
    await m.engine.wait_for_state("finished")
    assert history(store, "timer") == [("working", "finished", "done")]


WORKER = """
name: worker
initial_state: waiting
options:
  jobs: {slow: {max_attempts: 3, backoff: 10}}
actions:
  waiting:
    - {type: check_database_queue, job_type: slow}
  processing:
    - {type: sleep, seconds: 86400, success: job_done}
transitions:
  - {from: waiting, to: processing, event: new_job}
  - {from: waiting, to: waiting, event: no_jobs}
  - {from: processing, to: waiting, event: job_done}
  - {from: processing, to: waiting, event: "timeout(600)"}
"""


async def test_a_timeout_that_interrupts_a_jobs_action_fails_the_attempt(
    machine: StartMachine, store: SQLiteStore
) -> None:
    """Back in the claiming state through the timer, the job is not completed: its action
    was cut short, so the attempt fails and the job is retried after its backoff."""
    clock = VirtualClock()
    store.clock = clock
    store.add_job("slow", job_id="j1")
    m = await machine(WORKER, "worker", clock=clock)
    await m.engine.wait_for_state("processing")
    await running(m, clock)
    clock.advance(600.0)
    await m.engine.wait_for(
        lambda: (job := store.get_job("j1")) is not None and job.status == "pending"
    )
    job = store.get_job("j1")
    assert job is not None
    assert job.attempts == 1
    assert job.error_message is not None and "timeout(600)" in job.error_message
    assert ("processing", "waiting", "timeout(600)") in history(store, "worker")
    # The retry comes due and the job is claimed again: a second attempt, not a completion.
    clock.advance(HOUR)
    await m.engine.wait_for(lambda: (j := store.get_job("j1")) is not None and j.attempts == 2)


DWELL = """
name: dweller
initial_state: working
options:
  max_dwell: {working: 3600}
actions:
  working:
    - {type: sleep, seconds: 86400, success: done}
transitions:
  - {from: working, to: finished, event: done}
  - {from: working, to: escalated, event: stuck}
  - {from: escalated, to: working, event: retry}
"""


async def test_max_dwell_sends_stuck_mid_action_and_alerts(
    machine: StartMachine, store: SQLiteStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="statemachine_engine")
    clock = VirtualClock()
    m = await machine(DWELL, "dweller", clock=clock)
    await running(m, clock)
    start = clock.now()
    clock.advance(3600.0)
    await m.engine.wait_for_state("escalated")
    assert history(store, "dweller")[-1] == ("working", "escalated", "stuck")
    rows = stuck_rows(store, "dweller")
    assert rows == [
        {
            "machine_name": "dweller",
            "state": "working",
            "seconds": 3600.0,
            "since": start,
            "event": "stuck",
        }
    ]
    warnings = [r.getMessage() for r in caplog.records if "stuck: in state" in r.getMessage()]
    assert warnings == [warnings[0]]
    assert "dweller" in warnings[0] and "working" in warnings[0] and "3600" in warnings[0]
    await m.engine.wait_parked()
    assert not asleep_until(clock, start + 86400)


async def test_custom_stuck_event_and_alert_only_without_cancelling(
    machine: StartMachine, store: SQLiteStore
) -> None:
    """A stuck event with no transition from the state: the alert only, once; the action
    runs on to its own end."""
    text = """
name: dweller
initial_state: working
options:
  max_dwell: {working: 60}
  stuck_event: stalled
actions:
  working:
    - {type: sleep, seconds: 600, success: done}
transitions:
  - {from: working, to: finished, event: done}
  - {from: finished, to: working, event: stalled}
"""
    clock = VirtualClock()
    m = await machine(text, "dweller", clock=clock)
    await running(m, clock)
    clock.advance(60.0)
    await poll(lambda: len(stuck_rows(store, "dweller")) == 1)
    assert m.engine.state == "working" and m.engine._current is not None
    (row,) = stuck_rows(store, "dweller")
    assert row["event"] is None and row["seconds"] == 60.0
    clock.advance(540.0)
    await m.engine.wait_for_state("finished")
    assert len(stuck_rows(store, "dweller")) == 1


PARKED = """
name: approval
initial_state: waiting
options:
  max_dwell: {waiting: 259200, reminded: 172800}
transitions:
  - {from: waiting, to: approved, event: approve}
  - {from: waiting, to: reminded, event: "timeout(86400)"}
  - {from: reminded, to: approved, event: approve}
  - {from: reminded, to: escalated, event: stuck}
  - {from: escalated, to: approved, event: approve}
"""


async def test_dwell_limits_and_timers_while_parked_run_days_in_milliseconds(
    machine: StartMachine, store: SQLiteStore
) -> None:
    """`waiting` has a 3-day alert-only limit and a 1-day timer: the timer wins and the
    alert never comes; `reminded` escalates with `stuck` after 2 days, alerting once."""
    clock = VirtualClock()
    m = await machine(PARKED, "approval", clock=clock)
    await m.engine.wait_parked()
    clock.advance(86400.0)
    await m.engine.wait_for_state("reminded")
    await m.engine.wait_parked()
    assert stuck_rows(store, "approval") == []
    clock.advance(172799.0)
    await m.engine.wait_parked()
    assert m.engine.state == "reminded"
    clock.advance(1.0)
    await m.engine.wait_for_state("escalated")
    rows = stuck_rows(store, "approval")
    assert [(r["state"], r["event"]) for r in rows] == [("reminded", "stuck")]
    assert [e for _, _, e in history(store, "approval")] == ["timeout(86400)", "stuck"]


async def test_alert_only_dwell_while_parked_alerts_once_per_entry(
    machine: StartMachine, store: SQLiteStore
) -> None:
    text = """
name: idle
initial_state: waiting
options:
  max_dwell: {waiting: 600}
transitions:
  - {from: waiting, to: other, event: go}
  - {from: other, to: waiting, event: back}
"""
    clock = VirtualClock()
    m = await machine(text, "idle", clock=clock, safety_interval=60.0)
    await m.engine.wait_parked()
    clock.advance(600.0)
    await poll(lambda: len(stuck_rows(store, "idle")) == 1)
    parking = m.engine._parking
    for _ in range(30):  # an hour of safety re-checks: each wakes the machine and parks it
        before = parking._wake
        clock.advance(120.0)
        await poll(lambda before=before: parking.parked and parking._wake is not before)
    assert len(stuck_rows(store, "idle")) == 1
    store.send_event("idle", "go")
    m.engine.wake()
    await m.engine.wait_for_state("other")
    store.send_event("idle", "back")
    m.engine.wake()
    await m.engine.wait_for_state("waiting")
    await m.engine.wait_parked()
    clock.advance(600.0)
    await poll(lambda: len(stuck_rows(store, "idle")) == 2)


async def test_stuck_while_holding_a_job_fails_its_attempt(
    machine: StartMachine, store: SQLiteStore
) -> None:
    text = """
name: worker
initial_state: waiting
options:
  max_dwell: {processing: 300}
actions:
  waiting:
    - {type: check_database_queue, job_type: slow}
  processing:
    - {type: sleep, seconds: 86400, success: job_done}
transitions:
  - {from: waiting, to: processing, event: new_job}
  - {from: waiting, to: waiting, event: no_jobs}
  - {from: processing, to: waiting, event: job_done}
  - {from: processing, to: waiting, event: stuck}
"""
    clock = VirtualClock()
    store.clock = clock
    store.add_job("slow", job_id="j1")
    m = await machine(text, "worker", clock=clock)
    await m.engine.wait_for_state("processing")
    await running(m, clock)
    clock.advance(300.0)
    await m.engine.wait_for(
        lambda: (job := store.get_job("j1")) is not None and job.status != "processing"
    )
    job = store.get_job("j1")
    assert job is not None and job.status == "pending" and job.attempts == 1
    assert job.error_message is not None and "max_dwell" in job.error_message
