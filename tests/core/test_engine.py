"""The runtime loop, in-process against a temporary SQLite store (see tests/conftest.py)."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest

from statemachine_engine.actions.base import BaseAction
from statemachine_engine.clock import VirtualClock
from statemachine_engine.core import ActionLoader
from statemachine_engine.database.records import Claim, Committed, Job, Step
from statemachine_engine.database.sqlite import SQLiteStore
from statemachine_engine.errors import StoreError
from statemachine_engine.transport import ring

StartMachine = Callable[..., Awaitable[Any]]
Until = Callable[..., Awaitable[None]]

QUIET = 0.05
"""Seconds of real time in which a parked machine must do nothing (a negative check)."""


class ProbeAction(BaseAction):
    """Appends `tag` to context['trace'] and returns `event` (None when not given)."""

    provides: ClassVar[frozenset[str] | None] = frozenset({"trace"})

    async def execute(self, context: dict[str, Any]) -> str | None:
        context.setdefault("trace", []).append(self.config.get("tag"))
        return self.event("event", None)


class BoomAction(BaseAction):
    provides: ClassVar[frozenset[str] | None] = frozenset()

    async def execute(self, context: dict[str, Any]) -> str | None:
        raise RuntimeError("kaput")


class GateAction(BaseAction):
    """Waits until the test opens the gate (`gates[name].set()`); returns `success`."""

    provides: ClassVar[frozenset[str] | None] = frozenset({"gated"})
    gates: ClassVar[dict[str, asyncio.Event]] = {}

    async def execute(self, context: dict[str, Any]) -> str | None:
        context["gated"] = True
        await self.gates[str(self.config["name"])].wait()
        context["gated"] = False
        return self.event("success", None)


class StealAction(BaseAction):
    """Lets the lease run out and hands the job to another worker, then reports done."""

    provides: ClassVar[frozenset[str] | None] = frozenset()

    async def execute(self, context: dict[str, Any]) -> str | None:
        clock = self.runtime.clock
        assert isinstance(clock, VirtualClock)
        clock.advance(self.runtime.policy.lease_seconds + 1)
        assert self.runtime.store.claim_job("task", "thief@far:1") is not None
        return self.event("event", "job_done")


class ProbeLoader(ActionLoader):
    """The built-ins plus the test actions above."""

    extra: ClassVar[dict[str, type[BaseAction]]] = {
        "probe": ProbeAction,
        "boom": BoomAction,
        "gate": GateAction,
        "steal": StealAction,
    }

    def names(self) -> frozenset[str]:
        return super().names() | frozenset(self.extra)

    def resolve(self, action_type: str) -> type[BaseAction]:
        return self.extra.get(action_type) or super().resolve(action_type)


@pytest.fixture
def start(machine: StartMachine) -> StartMachine:
    """`machine` with the test actions available."""

    async def starter(text: str, name: str = "worker", **options: Any) -> Any:
        options.setdefault("loader", ProbeLoader())
        return await machine(text, name, **options)

    return starter


@pytest.fixture
def gates() -> dict[str, asyncio.Event]:
    GateAction.gates.clear()
    return GateAction.gates


def trace(m: Any) -> list[str]:
    return list(m.engine.context.get("trace", []))


def history(store: SQLiteStore, name: str) -> list[tuple[str | None, str, str | None]]:
    rows = reversed(store.history(machine=name, limit=1000))
    return [(r.from_state, r.to_state, r.event) for r in rows]


def job_of(store: SQLiteStore, job_id: str) -> Job:
    job = store.get_job(job_id)
    assert job is not None, f"no job {job_id}"
    return job


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie waiting to be reaped."""
    try:
        os.kill(pid, 0)
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (ProcessLookupError, FileNotFoundError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def quiet() -> None:
    """Let the loop run for a moment: used only to show that nothing happens."""
    await asyncio.sleep(QUIET)


WORKER = """
name: worker
initial_state: waiting
states: [waiting, processing]
events: [new_job, no_jobs, job_done, error]
transitions:
  - from: waiting
    to: processing
    event: new_job
    actions:
      - {type: probe, tag: check}
      - type: check_database_queue
        params: {job_type: task}
  - {from: waiting, to: waiting, event: no_jobs}
  - from: processing
    to: waiting
    event: job_done
    actions:
      - {type: probe, tag: work, event: job_done}
"""

TRANSITION_FORM = """
name: printer
initial_state: waiting
states: [waiting, processing]
events: [new_job, no_jobs, job_done]
transitions:
  - from: waiting
    to: processing
    event: new_job
    actions:
      - type: check_database_queue
        params: {job_type: task}
  - {from: waiting, to: waiting, event: no_jobs}
  - from: processing
    to: waiting
    event: job_done
    actions:
      - type: bash
        params: {command: "printf '%s\\n' {data.n} >> OUT", success: job_done}
"""

STATE_FORM = """
name: printer
initial_state: waiting
states: [waiting, processing]
events: [new_job, no_jobs, job_done]
actions:
  waiting:
    - type: check_database_queue
      job_type: task
      description: take the next job
  processing:
    - type: bash
      command: "printf '%s\\n' {data.n} >> OUT"
      success: job_done
transitions:
  - {from: waiting, to: processing, event: new_job}
  - {from: waiting, to: waiting, event: no_jobs}
  - {from: processing, to: waiting, event: job_done}
"""


async def test_both_dialects_behave_identically(
    start: StartMachine, store: SQLiteStore, tmp_path: Path, until: Until
) -> None:
    outputs = []
    for name, text in (("a", TRANSITION_FORM), ("b", STATE_FORM)):
        out = tmp_path / f"{name}.txt"
        ids = [store.add_job("task", {"n": n}).job_id for n in (1, 2, 3)]
        m = await start(text.replace("OUT", str(out)), name)
        await until(lambda ids=ids: all(job_of(store, i).status == "completed" for i in ids))
        await m.engine.wait_parked()
        assert await m.stop() == 0
        outputs.append((out.read_text(), history(store, name)))
    assert outputs[0] == outputs[1]
    text, steps = outputs[0]
    assert text == "1\n2\n3\n"
    assert (
        steps == [("waiting", "processing", "new_job"), ("processing", "waiting", "job_done")] * 3
    )


async def test_entry_actions_run_map_first_then_transition_actions_in_file_order(
    start: StartMachine,
) -> None:
    m = await start(
        """
name: order
initial_state: s
states: [s, t]
actions:
  s:
    - {type: probe, tag: map1}
    - {type: probe, tag: map2}
transitions:
  - from: s
    to: t
    event: go
    actions: [{type: probe, tag: tr1}]
  - from: s
    to: t
    event: other
    actions: [{type: probe, tag: tr2, event: go}]
""",
        "order",
    )
    assert await asyncio.wait_for(m.task, 5) == 0
    assert trace(m) == ["map1", "map2", "tr1", "tr2"]


async def test_first_event_with_a_transition_wins_and_events_without_one_are_skipped(
    start: StartMachine, store: SQLiteStore
) -> None:
    m = await start(
        """
name: first
initial_state: s
actions:
  s:
    - {type: probe, tag: a, event: nothing_here}
    - {type: probe, tag: b}
    - {type: probe, tag: c, event: go}
    - {type: probe, tag: d, event: later}
transitions:
  - {from: s, to: t, event: go}
  - {from: s, to: u, event: later}
  - {from: s, to: u, event: nothing}
""",
        "first",
    )
    assert await asyncio.wait_for(m.task, 5) == 0
    assert trace(m) == ["a", "b", "c"]
    assert history(store, "first") == [("s", "t", "go")]


async def test_error_without_a_transition_ends_the_action_list(
    start: StartMachine, store: SQLiteStore
) -> None:
    m = await start(
        """
name: halt
initial_state: s
actions:
  s:
    - {type: probe, tag: a, event: error}
    - {type: probe, tag: b, event: go}
transitions:
  - {from: s, to: t, event: go}
""",
        "halt",
    )
    await m.engine.wait_parked()
    assert trace(m) == ["a"]
    assert m.engine.state == "s"
    kinds = [row.kind for row in store.realtime_since()]
    assert "error" in kinds


async def test_an_action_that_raises_becomes_the_error_event(
    start: StartMachine, store: SQLiteStore
) -> None:
    m = await start(
        """
name: raiser
initial_state: s
actions:
  s: [{type: boom}, {type: probe, tag: skipped}]
  recovered: [{type: probe, tag: recovered}]
transitions:
  - {from: s, to: recovered, event: error}
""",
        "raiser",
    )
    assert await asyncio.wait_for(m.task, 5) == 0
    assert trace(m) == ["recovered"]
    assert m.engine.context["last_error"] == "RuntimeError: kaput"
    assert m.engine.context["last_error_action"] == "BoomAction"
    status = store.get_machine("raiser")
    assert status is not None and status.status == "finished"


async def test_idle_worker_parks_and_takes_a_later_job_at_once_after_wake(
    start: StartMachine, store: SQLiteStore, until: Until
) -> None:
    m = await start(WORKER)
    await m.engine.wait_parked()
    await quiet()
    assert trace(m) == ["check"], "a parked worker must not re-run its actions"
    assert m.engine.parked
    assert history(store, "worker") == [], "idle re-checks record no history"

    job = store.add_job("task", {"n": 1})
    woken = time.monotonic()
    m.engine.wake()
    await until(lambda: job_of(store, job.job_id).status != "pending", timeout=5)
    assert time.monotonic() - woken < 2  # the safety re-check is an hour away
    await until(lambda: job_of(store, job.job_id).status == "completed")
    await m.engine.wait_parked()
    await quiet()
    assert trace(m) == ["check", "check", "work", "check"]
    assert history(store, "worker") == [
        ("waiting", "processing", "new_job"),
        ("processing", "waiting", "job_done"),
    ]


async def test_doorbell_for_another_job_type_does_not_wake(
    start: StartMachine, store: SQLiteStore, until: Until
) -> None:
    m = await start(WORKER)
    await m.engine.wait_parked()
    other = store.add_job("other")
    m.engine.on_doorbell({"kind": "job", "job_type": "other"})
    assert m.engine.parked
    await quiet()
    assert trace(m) == ["check"]

    m.engine.on_doorbell({"kind": "job", "job_type": "task"})
    await until(lambda: len(trace(m)) == 2)
    await m.engine.wait_parked()
    assert job_of(store, other.job_id).status == "pending"


async def test_doorbell_socket_wakes_the_worker(
    start: StartMachine, store: SQLiteStore, until: Until
) -> None:
    m = await start(WORKER)
    await m.engine.wait_parked()
    job = store.add_job("task")
    assert ring("worker", {"kind": "job", "job_type": "task"})
    await until(lambda: job_of(store, job.job_id).status == "completed")
    await m.engine.wait_parked()
    assert trace(m) == ["check", "check", "work", "check"]


async def test_idle_event_without_a_transition_still_parks_and_wakes(
    start: StartMachine, store: SQLiteStore, until: Until
) -> None:
    """The released package's defect: a polling worker never saw jobs queued later."""
    m = await start(
        """
name: poller
initial_state: waiting
actions:
  waiting:
    - {type: probe, tag: check}
    - {type: check_database_queue, job_type: task}
  processing:
    - {type: probe, tag: work, event: job_done}
transitions:
  - {from: waiting, to: processing, event: new_job}
  - {from: processing, to: waiting, event: job_done}
""",
        "poller",
    )
    await m.engine.wait_parked()
    job = store.add_job("task")
    m.engine.on_doorbell({"kind": "job", "job_type": "task"})
    await until(lambda: job_of(store, job.job_id).status == "completed")
    await m.engine.wait_parked()
    assert trace(m) == ["check", "check", "work", "check"]


TIMER = """
name: timer
initial_state: waiting
states: [waiting, expired]
transitions:
  - from: waiting
    to: waiting
    event: no_jobs
    actions:
      - {type: probe, tag: check}
      - {type: check_database_queue, job_type: task}
  - {from: waiting, to: expired, event: timeout(3600)}
"""


async def test_timeout_fires_on_the_virtual_clock_and_idle_rechecks_keep_it(
    start: StartMachine, store: SQLiteStore
) -> None:
    clock = VirtualClock()
    began = time.monotonic()
    m = await start(TIMER, "timer", clock=clock)
    await m.engine.wait_parked()
    clock.advance(1800)
    m.engine.wake()
    await m.engine.wait_for(lambda: len(trace(m)) == 2 and m.engine.parked)
    clock.advance(1799)
    await quiet()
    assert m.engine.state == "waiting" and m.engine.parked
    clock.advance(1)
    assert await asyncio.wait_for(m.task, 5) == 0
    assert time.monotonic() - began < 5  # an hour of virtual time
    assert history(store, "timer") == [("waiting", "expired", "timeout(3600)")]
    status = store.get_machine("timer")
    assert status is not None and status.status == "finished"


async def test_timeout_in_a_state_waiting_for_events(start: StartMachine) -> None:
    clock = VirtualClock()
    m = await start(
        """
name: patience
initial_state: waiting
transitions:
  - {from: waiting, to: done, event: go}
  - {from: waiting, to: late, event: timeout(30)}
""",
        "patience",
        clock=clock,
    )
    await m.engine.wait_parked()
    clock.advance(30)
    assert await asyncio.wait_for(m.task, 5) == 0
    assert m.engine.state == "late"


async def test_final_state_runs_its_actions_and_exits_zero(
    start: StartMachine, store: SQLiteStore
) -> None:
    m = await start(
        """
name: ender
initial_state: working
actions:
  working: [{type: probe, tag: work, event: done}]
  finished: [{type: probe, tag: final}]
transitions:
  - {from: working, to: finished, event: done}
  - {from: "*", to: finished, event: abort}
""",
        "ender",
    )
    assert await asyncio.wait_for(m.task, 5) == 0
    assert trace(m) == ["work", "final"]
    status = store.get_machine("ender")
    assert status is not None
    assert (status.status, status.current_state) == ("finished", "finished")


async def test_unhandled_event_is_recorded_and_the_machine_stays(
    start: StartMachine, store: SQLiteStore
) -> None:
    m = await start(
        """
name: listener
initial_state: idle
states: [idle, done]
events: [go, bogus]
transitions:
  - {from: idle, to: done, event: go}
""",
        "listener",
    )
    await m.engine.wait_parked()
    bogus = store.send_event("listener", "bogus", {"x": 1})
    m.engine.wake()
    await m.engine.wait_for(lambda: m.engine.parked and store.next_event("listener") is None)
    assert m.engine.state == "idle"
    assert store.list_events(target="listener", status="unhandled")[0].id == bogus.id
    rows = [r for r in store.realtime_since() if r.kind == "unhandled_event"]
    assert [r.payload["event_id"] for r in rows] == [bogus.id]
    assert history(store, "listener") == []

    store.send_event("listener", "go")
    m.engine.wake()
    assert await asyncio.wait_for(m.task, 5) == 0
    assert history(store, "listener") == [("idle", "done", "go")]


async def test_several_unhandled_events_do_not_hide_a_handled_one(
    start: StartMachine, store: SQLiteStore
) -> None:
    m = await start(
        """
name: sorter
initial_state: idle
events: [go, bogus]
transitions:
  - {from: idle, to: done, event: go}
""",
        "sorter",
    )
    await m.engine.wait_parked()
    for event in ("bogus", "bogus", "go"):
        store.send_event("sorter", event)
    m.engine.wake()
    assert await asyncio.wait_for(m.task, 5) == 0
    statuses = [e.status for e in reversed(store.list_events(target="sorter"))]
    assert statuses == ["unhandled", "unhandled", "processed"]


async def test_events_are_consumed_in_id_order_each_once(
    start: StartMachine, store: SQLiteStore, until: Until
) -> None:
    text = """
name: pingpong
initial_state: a
transitions:
  - {from: a, to: b, event: go}
  - {from: b, to: a, event: back}
"""
    sent = [store.send_event("pingpong", "go" if i % 2 == 0 else "back").id for i in range(25)]
    m = await start(text, "pingpong")
    for i in range(25, 50):
        sent.append(store.send_event("pingpong", "go" if i % 2 == 0 else "back").id)
        m.engine.wake()
    await until(lambda: store.next_event("pingpong") is None)
    await m.engine.wait_parked()
    consumed = [r.event_id for r in reversed(store.history(machine="pingpong", limit=100))]
    assert consumed == sent
    assert all(e.status == "processed" for e in store.list_events(target="pingpong"))
    assert m.engine.state == "a"


async def test_a_pending_event_preempts_the_entry_actions(
    start: StartMachine, store: SQLiteStore
) -> None:
    event = store.send_event("pre", "go")
    m = await start(
        """
name: pre
initial_state: start
transitions:
  - from: start
    to: working
    event: begin
    actions: [{type: probe, tag: start, event: begin}]
  - from: working
    to: done
    event: go
    actions: [{type: probe, tag: work}]
""",
        "pre",
    )
    assert await asyncio.wait_for(m.task, 5) == 0
    assert trace(m) == ["start"], "the event fires before working's actions run"
    rows = list(reversed(store.history(machine="pre")))
    assert [(r.to_state, r.event, r.event_id) for r in rows] == [
        ("working", "begin", None),
        ("done", "go", event.id),
    ]


SLEEPER = """
name: sleeper
initial_state: waiting
transitions:
  - from: waiting
    to: processing
    event: new_job
    actions: [{type: check_database_queue, job_type: task}]
  - {from: waiting, to: waiting, event: no_jobs}
  - from: processing
    to: waiting
    event: job_done
    actions:
      - type: bash
        command: "sleep DELAY; echo $$ > PIDS; sleep 60 & echo $! >> PIDS; wait"
        timeout: 120
"""


async def start_sleeper(start: StartMachine, pids_file: Path, delay: float, until: Until) -> Any:
    """A worker whose bash writes its pid and its child's pid after `delay` seconds."""
    text = SLEEPER.replace("PIDS", str(pids_file))
    text = text.replace("sleep DELAY; ", f"sleep {delay}; " if delay else "")
    m = await start(text, "sleeper")
    await until(lambda: pids_file.exists() and len(pids_file.read_text().split()) == 2)
    return m, [int(p) for p in pids_file.read_text().split()]


@pytest.mark.parametrize("delay", [0, 0.2], ids=["as-it-starts", "while-it-runs"])
async def test_stop_during_a_long_bash_kills_it_and_releases_the_job(
    start: StartMachine, store: SQLiteStore, tmp_path: Path, until: Until, delay: float
) -> None:
    job = store.add_job("task")
    m, pids = await start_sleeper(start, tmp_path / "pids", delay, until)
    assert job_of(store, job.job_id).attempts == 1

    stopping = time.monotonic()
    assert await m.stop(timeout=2) == 0
    assert time.monotonic() - stopping < 5  # the bash child sleeps 60 s
    await until(lambda: not any(alive(pid) for pid in pids), timeout=2)
    released = store.get_job(job.job_id)
    assert released is not None
    assert (released.status, released.attempts, released.lease_owner) == ("pending", 0, None)
    status = store.get_machine("sleeper")
    assert status is not None and status.status == "stopped"


async def test_stop_while_parked_and_by_control_message(start: StartMachine) -> None:
    first = await start(WORKER)
    await first.engine.wait_parked()
    assert await first.stop(timeout=1) == 0
    second = await start(WORKER.replace("name: worker", "name: other"), "other")
    await second.engine.wait_parked()
    second.engine.on_doorbell({"kind": "control", "op": "stop"})
    assert await asyncio.wait_for(second.task, 1) == 0


GATED = """
name: gated
initial_state: waiting
states: [waiting, processing, reporting]
transitions:
  - from: waiting
    to: processing
    event: new_job
    actions: [{type: check_database_queue, job_type: task}]
  - {from: waiting, to: waiting, event: no_jobs}
  - from: processing
    to: waiting
    event: job_done
    actions: [{type: gate, name: work, success: job_done}]
"""


async def test_job_completes_in_the_step_that_returns_to_the_claim_state(
    start: StartMachine, store: SQLiteStore, gates: dict[str, asyncio.Event], until: Until
) -> None:
    gates["work"] = asyncio.Event()
    job = store.add_job("task", {"n": 1})
    m = await start(GATED, "gated")
    await until(lambda: m.engine.context.get("gated"))
    assert m.engine.state == "processing"
    held = store.get_job(job.job_id)
    assert held is not None and held.status == "processing"

    gates["work"].set()
    await until(lambda: job_of(store, job.job_id).status == "completed")
    done = store.get_job(job.job_id)
    back = store.history(machine="gated", limit=1)[0]
    assert done is not None
    assert (back.to_state, back.event, back.job_id) == ("waiting", "job_done", job.job_id)
    assert done.completed_at == back.created_at
    await m.engine.wait_parked()
    assert m.engine.snapshot()["job_id"] is None
    # the finished job stays visible in the context until the next claim
    assert m.engine.context["current_job"]["id"] == job.job_id


async def test_reaching_a_final_state_releases_the_held_job(
    start: StartMachine, store: SQLiteStore
) -> None:
    job = store.add_job("task")
    m = await start(
        """
name: quitter
initial_state: waiting
transitions:
  - from: waiting
    to: processing
    event: new_job
    actions: [{type: check_database_queue, job_type: task}]
  - {from: waiting, to: waiting, event: no_jobs}
  - from: processing
    to: waiting
    event: job_done
    actions: [{type: probe, tag: work, event: give_up}]
  - {from: processing, to: gone, event: give_up}
""",
        "quitter",
    )
    assert await asyncio.wait_for(m.task, 5) == 0
    released = store.get_job(job.job_id)
    assert released is not None
    assert (released.status, released.attempts, released.lease_owner) == ("pending", 0, None)


FLAKY = """
name: flaky
initial_state: waiting
transitions:
  - from: waiting
    to: processing
    event: new_job
    actions: [{type: check_database_queue, job_type: task}]
  - {from: waiting, to: waiting, event: no_jobs}
  - from: processing
    to: waiting
    event: job_done
    actions: [{type: bash, command: "echo broken >&2; exit 3"}]
  - {from: processing, to: waiting, event: error}
"""


async def test_errors_retry_with_backoff_until_the_job_fails_for_good(
    start: StartMachine, store: SQLiteStore, until: Until
) -> None:
    clock = VirtualClock()
    m = await start(FLAKY, "flaky", clock=clock, backoff_base=10.0)
    await m.engine.wait_parked()
    job = store.add_job("task", max_attempts=3)
    m.engine.wake()

    def job_now() -> Any:
        return store.get_job(job.job_id)

    for attempt, backoff in ((1, 10.0), (2, 20.0)):
        await until(lambda a=attempt: job_now().attempts == a and job_now().status == "pending")
        await m.engine.wait_parked()
        assert job_now().run_after == clock.now() + backoff
        clock.advance(backoff - 0.5)
        await quiet()
        assert job_now().attempts == attempt, "not retried before its backoff"
        clock.advance(0.5)
    await until(lambda: job_now().status == "failed")
    failed = job_now()
    assert failed.attempts == 3
    assert failed.errors == ("exit code 3: broken",) * 3
    assert failed.error_message == "exit code 3: broken"
    assert [e for _, _, e in history(store, "flaky")] == ["new_job", "error"] * 3


COMPLETER = """
name: completer
initial_state: waiting
transitions:
  - from: waiting
    to: processing
    event: new_job
    actions: [{type: check_database_queue, job_type: task}]
  - {from: waiting, to: waiting, event: no_jobs}
  - from: processing
    to: reporting
    event: reported
    actions:
      - {type: complete_job, result: "{data.n}"}
      - {type: probe, tag: report, event: reported}
  - {from: reporting, to: waiting, event: back}
"""


async def test_complete_job_action_completes_before_returning(
    start: StartMachine, store: SQLiteStore, until: Until
) -> None:
    job = store.add_job("task", {"n": 7})
    m = await start(COMPLETER, "completer")
    await m.engine.wait_for(lambda: m.engine.state == "reporting" and m.engine.parked)
    done = store.get_job(job.job_id)
    assert done is not None
    assert (done.status, done.result) == ("completed", 7)
    store.send_event("completer", "back")
    m.engine.wake()
    await m.engine.wait_for(lambda: m.engine.state == "waiting" and m.engine.parked)
    again = store.get_job(job.job_id)
    assert again is not None and again.completed_at == done.completed_at


@pytest.mark.parametrize(("retry", "status"), [("false", "failed"), ("true", "pending")])
async def test_fail_job_action(
    start: StartMachine, store: SQLiteStore, until: Until, retry: str, status: str
) -> None:
    job = store.add_job("task")
    m = await start(
        f"""
name: failer
initial_state: waiting
transitions:
  - from: waiting
    to: processing
    event: new_job
    actions: [{{type: check_database_queue, job_type: task}}]
  - {{from: waiting, to: waiting, event: no_jobs}}
  - from: processing
    to: waiting
    event: gave_up
    actions:
      - {{type: fail_job, message: "bad {{job_id}}", retry: {retry}, success: gave_up}}
""",
        "failer",
        backoff_base=3600.0,
    )
    await until(lambda: job_of(store, job.job_id).errors)
    await m.engine.wait_parked()
    failed = store.get_job(job.job_id)
    assert failed is not None
    assert failed.error_message == f"bad {job.job_id}"
    assert failed.errors == (f"bad {job.job_id}",)
    assert failed.status == status, "returning to the claim state must not complete it"


async def test_job_without_payload_is_completed(
    start: StartMachine, store: SQLiteStore, tmp_path: Path, until: Until
) -> None:
    out = tmp_path / "out"
    m = await start(
        f"""
name: nopayload
initial_state: waiting
actions:
  waiting: [{{type: check_database_queue, job_type: task}}]
  processing:
    - type: bash
      command: "printf '%s|%s' {{job_id}} {{data}} > {out}"
      success: job_done
transitions:
  - {{from: waiting, to: processing, event: new_job}}
  - {{from: waiting, to: waiting, event: no_jobs}}
  - {{from: processing, to: waiting, event: job_done}}
""",
        "nopayload",
    )
    job = store.add_job("task")
    assert job.data is None
    m.engine.wake()
    await until(lambda: job_of(store, job.job_id).status == "completed")
    assert out.read_text() == f"{job.job_id}|"
    await m.engine.wait_parked()
    assert not m.task.done()


async def test_states_named_completed_or_stopped_are_not_final(
    start: StartMachine, store: SQLiteStore, until: Until
) -> None:
    m = await start(
        """
name: named
initial_state: waiting
states: [waiting, processing, completed, stopped]
transitions:
  - from: waiting
    to: processing
    event: new_job
    actions: [{type: check_database_queue, job_type: task}]
  - {from: waiting, to: waiting, event: no_jobs}
  - from: processing
    to: completed
    event: job_done
    actions: [{type: probe, tag: work, event: job_done}]
  - from: completed
    to: waiting
    event: next
    actions: [{type: probe, tag: completed, event: next}]
  - {from: "*", to: stopped, event: stop}
  - from: stopped
    to: waiting
    event: resume
    actions: [{type: probe, tag: stopped, event: resume}]
""",
        "named",
    )
    job = store.add_job("task")
    m.engine.wake()
    await until(lambda: job_of(store, job.job_id).status == "completed")
    await m.engine.wait_for(lambda: m.engine.state == "waiting" and m.engine.parked)
    store.send_event("named", "stop")
    m.engine.wake()
    await until(lambda: "stopped" in trace(m))
    await m.engine.wait_for(lambda: m.engine.state == "waiting" and m.engine.parked)
    assert trace(m) == ["work", "completed", "stopped"]
    assert not m.task.done()
    status = store.get_machine("named")
    assert status is not None and status.status == "running"


SENDER = """
name: sender
initial_state: waiting
transitions:
  - from: waiting
    to: processing
    event: new_job
    actions: [{type: check_database_queue, job_type: task}]
  - {from: waiting, to: waiting, event: no_jobs}
  - from: processing
    to: waiting
    event: job_done
    actions:
      - type: send_event
        target_machine: ghost
        event_type: hello
        payload: {job: "{job_id}", n: "{data.n}"}
      - {type: probe, tag: work, event: job_done}
"""


async def test_send_event_commits_with_the_transition_and_waits_for_a_stopped_target(
    start: StartMachine, store: SQLiteStore, monkeypatch: pytest.MonkeyPatch, until: Until
) -> None:
    commits: list[tuple[Step, int, bool]] = []
    real_commit = store.commit_steps

    def spy(
        steps: Sequence[Step], claim: Claim | None = None, release: Sequence[Job] = ()
    ) -> Committed:
        before = len(store.list_events(target="ghost"))
        result = real_commit(steps, claim, release)
        commits.extend(
            (step, before, acked) for step, acked in zip(steps, result.acked, strict=True)
        )
        return result

    monkeypatch.setattr(store, "commit_steps", spy)
    job = store.add_job("task", {"n": 5})
    m = await start(SENDER, "sender")
    await until(lambda: job_of(store, job.job_id).status == "completed")
    with_outbox = [c for c in commits if c[0].outbox]
    assert len(with_outbox) == 1
    step, before, result = with_outbox[0]
    assert (step.from_state, step.to_state, step.event) == ("processing", "waiting", "job_done")
    assert step.job_ack is not None and step.job_ack.outcome == "completed"
    assert before == 0 and result
    (event,) = store.list_events(target="ghost")
    assert (event.status, event.event_type, event.source_machine) == ("pending", "hello", "sender")
    assert event.payload == {"job": job.job_id, "n": 5}
    assert event.job_id == job.job_id
    await m.stop()

    ghost = await start(
        """
name: ghost
initial_state: idle
transitions:
  - {from: idle, to: greeted, event: hello}
""",
        "ghost",
    )
    assert await asyncio.wait_for(ghost.task, 5) == 0
    assert store.list_events(target="ghost")[0].status == "processed"


FENCED = """
name: fenced
initial_state: waiting
transitions:
  - from: waiting
    to: processing
    event: new_job
    actions: [{type: check_database_queue, job_type: task}]
  - {from: waiting, to: waiting, event: no_jobs}
  - from: processing
    to: waiting
    event: job_done
    actions:
      - {type: send_event, target_machine: downstream, event_type: finished}
      - LATE
  - {from: processing, to: waiting, event: error}
  - {from: processing, to: reporting, event: reported}
  - {from: reporting, to: waiting, event: back}
"""


@pytest.mark.parametrize(
    ("late", "fenced_ack"),
    [
        ("{type: steal}", True),
        ("{type: steal, event: reported}", False),
        ("{type: gate, name: work, success: job_done}", True),
    ],
    ids=["late-completion", "late-step-without-ack", "heartbeat-cancels-the-action"],
)
async def test_lost_lease_fences_the_late_completion_and_drops_the_outbox(
    start: StartMachine,
    store: SQLiteStore,
    monkeypatch: pytest.MonkeyPatch,
    gates: dict[str, asyncio.Event],
    until: Until,
    late: str,
    fenced_ack: bool,
) -> None:
    results: list[bool] = []
    real_commit = store.commit_steps

    def spy(
        steps: Sequence[Step], claim: Claim | None = None, release: Sequence[Job] = ()
    ) -> Committed:
        committed = real_commit(steps, claim, release)
        results.extend(committed.acked)
        return committed

    monkeypatch.setattr(store, "commit_steps", spy)
    gates["work"] = asyncio.Event()
    clock = VirtualClock()
    store.clock = clock
    job = store.add_job("task")
    m = await start(FENCED.replace("LATE", late), "fenced", clock=clock, lease_seconds=30.0)
    if "gate" in late:
        await until(lambda: m.engine.context.get("gated"))
        clock.advance(31)
        assert store.claim_job("task", "thief@far:1") is not None
    await m.engine.wait_parked()

    assert (False in results) == fenced_ack
    assert m.engine.state == ("waiting" if fenced_ack else "reporting")
    stolen = store.get_job(job.job_id)
    assert stolen is not None
    assert (stolen.status, stolen.lease_owner, stolen.attempts) == ("processing", "thief@far:1", 2)
    assert store.list_events(target="downstream") == []
    assert m.engine.snapshot()["job_id"] is None
    if "gate" in late:
        assert "lease lost" in m.engine.context["last_error"]


async def test_context_map_and_event_placeholders(start: StartMachine, store: SQLiteStore) -> None:
    store.send_event("mapper", "go", {"user": {"name": "ann"}, "n": 3})
    m = await start(
        """
name: mapper
initial_state: idle
events:
  go:
    context_map: {who: payload.user.name, n: event_data.payload.n}
  finish:
transitions:
  - {from: idle, to: got, event: go}
  - from: got
    to: done
    event: finish
    actions:
      - type: set_context
        values: {greeting: "hi {who}", copied: "{event_data.payload.n}"}
      - {type: probe, tag: x, event: finish}
""",
        "mapper",
    )
    assert await asyncio.wait_for(m.task, 5) == 0
    context = m.engine.context
    assert (context["who"], context["n"]) == ("ann", 3)
    assert (context["greeting"], context["copied"]) == ("hi ann", 3)


async def test_job_placeholders_reach_actions_and_bash(
    start: StartMachine, store: SQLiteStore, tmp_path: Path, until: Until
) -> None:
    out = tmp_path / "out"
    job = store.add_job("task", {"x": "it's $(rm -rf /)", "k": [1, 2]})
    m = await start(
        f"""
name: placeholders
initial_state: waiting
transitions:
  - from: waiting
    to: processing
    event: new_job
    actions: [{{type: check_database_queue, job_type: task}}]
  - {{from: waiting, to: waiting, event: no_jobs}}
  - from: processing
    to: waiting
    event: job_done
    actions:
      - type: set_context
        values: {{got: "{{current_job.data.x}}", ks: "{{current_job.data.k}}"}}
      - {{type: bash, command: "printf %s {{current_job.data.x}} > {out}"}}
""",
        "placeholders",
    )
    await until(lambda: job_of(store, job.job_id).status == "completed")
    assert out.read_text() == "it's $(rm -rf /)"
    assert m.engine.context["got"] == "it's $(rm -rf /)"
    assert m.engine.context["ks"] == [1, 2]


STEPS = """
name: keys
initial_state: start
transitions:
  - from: start
    to: waiting
    event: begin
    actions: [{type: bash, command: "echo $STATEMACHINE_STEP_KEY >> OUT", success: begin}]
  - from: waiting
    to: processing
    event: new_job
    actions: [{type: check_database_queue, job_type: task}]
  - {from: waiting, to: waiting, event: no_jobs}
  - from: processing
    to: reporting
    event: job_done
    actions:
      - {type: bash, command: "echo $STATEMACHINE_STEP_KEY >> OUT", success: recorded}
      - {type: gate, name: work, success: job_done}
  - from: reporting
    to: waiting
    event: reported
    actions: [{type: bash, command: "echo $STATEMACHINE_STEP_KEY >> OUT", success: reported}]
"""


async def test_step_key_reaches_bash_and_is_unique_per_step_across_restarts(
    start: StartMachine,
    store: SQLiteStore,
    tmp_path: Path,
    gates: dict[str, asyncio.Event],
    until: Until,
) -> None:
    out = tmp_path / "keys"
    text = STEPS.replace("OUT", str(out))
    gates["work"] = asyncio.Event()
    gates["work"].set()
    first = store.add_job("task").job_id
    m = await start(text, "keys")
    await until(lambda: job_of(store, first).status == "completed")
    await m.engine.wait_parked()
    gates["work"].clear()
    second = store.add_job("task").job_id
    m.engine.wake()
    await until(lambda: m.engine.context.get("gated"))
    await m.stop()
    assert len(out.read_text().split()) == 4, "start, processing, reporting, processing"

    gates["work"].set()
    again = await start(text, "keys")
    await until(lambda: job_of(store, second).status == "completed")
    await again.engine.wait_parked()
    keys = out.read_text().split()
    assert len(keys) == 7
    assert len(set(keys)) == 7, f"a step key was handed out twice: {keys}"
    assert all(key.startswith("keys:") and key[5:].isdigit() for key in keys)
    assert again.engine.context["step_key"] == f"keys:{again.engine.step}"


async def test_definition_hash_is_stored_with_the_machine(
    start: StartMachine, store: SQLiteStore
) -> None:
    m = await start(WORKER)
    await m.engine.wait_parked()
    status = store.get_machine("worker")
    assert status is not None
    assert status.definition_hash == m.engine.definition.digest
    assert len(status.definition_hash) == 64
    stored = store.get_definition(status.definition_hash)
    assert stored is not None and stored["text"] == WORKER


async def test_a_job_left_by_a_dead_run_counts_its_attempt(
    start: StartMachine, store: SQLiteStore, until: Until
) -> None:
    job = store.add_job("task", max_attempts=1)
    dead_owner = f"worker@{socket.gethostname()}:{os.getpid() + 100000}"
    assert store.claim_job("task", dead_owner) is not None
    m = await start(WORKER)
    await m.engine.wait_parked()
    failed = store.get_job(job.job_id)
    assert failed is not None
    assert (failed.status, failed.attempts) == ("failed", 1)
    assert "died" in (failed.error_message or "")
    assert trace(m) == ["check"]


async def test_a_store_failure_ends_the_run_as_crashed(
    start: StartMachine, store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_commit = store.commit_steps

    def broken(
        steps: Sequence[Step], claim: Claim | None = None, release: Sequence[Job] = ()
    ) -> Committed:
        if steps:  # the claim commits; the first step after it does not
            raise StoreError("database is full")
        return real_commit(steps, claim, release)

    monkeypatch.setattr(store, "commit_steps", broken)
    m = await start(WORKER)
    store.add_job("task")
    m.engine.wake()
    with pytest.raises(RuntimeError, match="crashed"):
        await m.engine.wait_for_state("never")
    assert await asyncio.wait_for(m.task, 5) == 1, "a database failure while running exits 1"
    status = store.get_machine("worker")
    assert status is not None and status.status == "crashed"
    assert [j.status for j in store.list_jobs()] == ["pending"], "the held job is released"
