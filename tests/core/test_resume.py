"""`options.restart: resume` and durable timers in-process, on a VirtualClock (DESIGN §13.6):
a restarted machine continues in its last committed state with its context, its step key
and its timer deadline; a timer that fell due while it was down fires at once with
`late_by`; a held job is held again; the event that entered the state is not delivered
twice; `restart: initial` (the default) starts over."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from statemachine_engine.clock import VirtualClock
from statemachine_engine.config.loader import parse_definition
from statemachine_engine.core import ActionLoader
from statemachine_engine.core.resume import Snapshot
from statemachine_engine.database.sqlite import SQLiteStore
from statemachine_engine.errors import ConfigError

WAITER = """
name: waiter
initial_state: idle
states: [idle, waiting, done, twice]
options: {restart: %s}
events:
  go: {context_map: {who: event_data.payload.who}}
transitions:
  - {from: idle, to: waiting, event: go}
  - {from: waiting, to: twice, event: go}
  - {from: waiting, to: done, event: timeout(3600)}
  - {from: done, to: idle, event: go}
"""

WORKER = """
name: worker
initial_state: waiting
states: [waiting, processing]
options: {restart: resume}
actions:
  waiting: [{type: check_database_queue, job_type: task}]
  processing: [{type: sleep, duration: 100, success: slept}]
transitions:
  - {from: waiting, to: processing, event: new_job}
  - {from: waiting, to: waiting, event: no_jobs}
  - {from: processing, to: waiting, event: slept}
"""


async def _in_waiting(machine: Any, store: SQLiteStore, clock: VirtualClock, mode: str) -> Any:
    m = await machine(WAITER % mode, "waiter", clock=clock)
    await m.engine.wait_parked()
    store.send_event("waiter", "go", {"who": "alice"})
    m.engine.wake()
    await m.engine.wait_for_state("waiting")
    await m.engine.wait_parked()
    return m


async def test_resume_keeps_state_context_step_key_and_timer_deadline(
    machine: Any, store: SQLiteStore
) -> None:
    clock = VirtualClock()
    first = await _in_waiting(machine, store, clock, "resume")
    entered = first.engine.entered_at
    key = first.engine.context["step_key"]
    clock.advance(1000)
    assert await first.stop() == 0

    second = await machine(WAITER % "resume", "waiter", clock=clock)
    await second.engine.wait_parked()
    assert second.engine.state == "waiting"
    assert second.engine.context["who"] == "alice"
    assert second.engine.context["step_key"] == key, "the redo keeps the step key"
    assert second.engine.entered_at == entered
    clock.advance(2599)
    await second.engine.wait_parked()
    await asyncio.sleep(0.02)
    assert second.engine.state == "waiting", "the timer keeps its original deadline"
    clock.advance(1)
    await second.engine.wait_for_state("done")
    assert second.engine.context["late_by"] == 0.0
    [event] = store.list_events(target="waiter")
    assert (event.status, event.deliveries) == ("processed", 1), "go was not delivered twice"
    status = store.get_machine("waiter")
    assert status is not None and status.current_state == "done"


async def test_a_timer_due_while_down_fires_at_once_with_late_by(
    machine: Any, store: SQLiteStore
) -> None:
    clock = VirtualClock()
    first = await _in_waiting(machine, store, clock, "resume")
    assert await first.stop() == 0
    clock.advance(3600 + 1234.5)  # down past the deadline

    second = await machine(WAITER % "resume", "waiter", clock=clock)
    await second.engine.wait_for_state("done")
    assert second.engine.context["late_by"] == 1234.5
    timers = [r for r in store.history(machine="waiter") if r.event == "timeout(3600)"]
    assert len(timers) == 1, "the late timer fires once"


async def test_restart_initial_starts_over(machine: Any, store: SQLiteStore) -> None:
    clock = VirtualClock()
    first = await _in_waiting(machine, store, clock, "initial")
    assert await first.stop() == 0
    assert store.machine_snapshot("waiter") is None, "no snapshot for restart: initial"
    second = await machine(WAITER % "initial", "waiter", clock=clock)
    await second.engine.wait_parked()
    assert second.engine.state == "idle"
    assert "who" not in second.engine.context


async def test_a_finished_run_starts_over(machine: Any, store: SQLiteStore) -> None:
    text = """
name: once
initial_state: a
states: [a, b]
options: {restart: resume}
actions:
  a: [{type: log, message: hi, success: go}]
transitions:
  - {from: a, to: b, event: go}
"""
    first = await machine(text, "once")
    assert await asyncio.wait_for(first.task, 5) == 0
    second = await machine(text, "once")
    assert await asyncio.wait_for(second.task, 5) == 0
    steps = [(r.from_state, r.to_state) for r in store.history(machine="once")]
    assert steps == [("a", "b"), ("a", "b")]


async def test_a_held_job_is_held_again_and_completes_once(
    machine: Any, store: SQLiteStore, until: Any
) -> None:
    clock = VirtualClock()
    store.clock = clock
    store.add_job("task", job_id="t1")
    first = await machine(WORKER, "worker", clock=clock)
    await first.engine.wait_for_state("processing")
    clock.advance(40)
    assert await first.stop() == 0
    job = store.get_job("t1")
    assert job is not None and job.status == "processing", "a resume machine keeps its job"

    second = await machine(WORKER, "worker", clock=clock)
    await until(lambda: second.engine.runtime.job is not None)
    assert second.engine.state == "processing"
    assert second.engine.runtime.job.job_id == "t1"
    assert second.engine.runtime.job.lease_owner == second.engine.runtime.owner
    clock.advance(59)  # the redo of the sleep started at resume: not done yet
    await asyncio.sleep(0.02)
    assert second.engine.state == "processing"
    clock.advance(41)
    await until(lambda: (store.get_job("t1") or job).status == "completed")
    done = store.get_job("t1")
    assert done is not None and done.attempts == 1


async def test_a_job_taken_meanwhile_resumes_in_the_claiming_state(
    machine: Any, store: SQLiteStore
) -> None:
    clock = VirtualClock()
    store.clock = clock
    store.add_job("task", job_id="t1")
    first = await machine(WORKER, "worker", clock=clock)
    await first.engine.wait_for_state("processing")
    assert await first.stop() == 0
    clock.advance(31)  # the lease ran out: another worker takes the job
    taken = store.claim_job("task", "other@elsewhere:1", lease_seconds=600)
    assert taken is not None and taken.job_id == "t1"

    second = await machine(WORKER, "worker", clock=clock)
    await second.engine.wait_parked()
    assert second.engine.state == "waiting"
    assert second.engine.runtime.job is None
    job = store.get_job("t1")
    assert job is not None and job.lease_owner == "other@elsewhere:1"


async def test_a_state_the_file_no_longer_declares_starts_over(
    machine: Any, store: SQLiteStore
) -> None:
    clock = VirtualClock()
    first = await _in_waiting(machine, store, clock, "resume")
    assert await first.stop() == 0
    renamed = (WAITER % "resume").replace("waiting", "pending")
    second = await machine(renamed, "waiter", clock=clock)
    await second.engine.wait_parked()
    assert second.engine.state == "idle"


def test_snapshot_round_trip_through_the_codec() -> None:
    snapshot = Snapshot("s", 7, 1.5, {"a": [1, {"b": "é"}], "n": None}, "j1", "w", True, event_id=3)
    assert Snapshot.decode(snapshot.encode()) == snapshot
    with pytest.raises(ValueError, match="unreadable machine snapshot"):
        Snapshot.decode('{"state": "s"}')


def test_restart_option_is_checked_at_load() -> None:
    text = (WAITER % "resum").lstrip()
    with pytest.raises(ConfigError) as caught:
        parse_definition(text, "waiter.yaml", ActionLoader())
    message = str(caught.value)
    assert message.startswith("waiter.yaml:4:20:"), message
    assert "did you mean 'resume'" in message
    definition = parse_definition((WAITER % "initial").lstrip(), "w.yaml", ActionLoader())
    assert definition.restart == "initial"
    default = parse_definition(
        (WAITER % "initial").replace("options: {restart: initial}\n", ""),
        "w.yaml",
        ActionLoader(),
    )
    assert default.restart == "initial"
