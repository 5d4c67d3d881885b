"""Job outcomes (DESIGN §13.1-13.4): failures fail the attempt, no wedge, no silent stall,
no endless instant loop. Each test reproduces a report against a real SQLite store."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

import pytest

from statemachine_engine.actions.base import BaseAction, Failure
from statemachine_engine.core import ActionLoader
from statemachine_engine.database.records import Job
from statemachine_engine.database.sqlite import SQLiteStore

StartMachine = Callable[..., Awaitable[Any]]
Until = Callable[..., Awaitable[None]]


class BoomAction(BaseAction):
    provides: ClassVar[frozenset[str] | None] = frozenset()

    async def execute(self, context: dict[str, Any]) -> str | None:
        raise KeyError("payload")


class NotFoundAction(BaseAction):
    """A custom action declaring `not_found` a failure; returns it as a plain string."""

    provides: ClassVar[frozenset[str] | None] = frozenset()
    failure_events: ClassVar[frozenset[str]] = frozenset({"not_found"})

    async def execute(self, context: dict[str, Any]) -> str | None:
        return "not_found"


class RefusedAction(BaseAction):
    """A custom action returning a Failure with its reason."""

    provides: ClassVar[frozenset[str] | None] = frozenset()

    async def execute(self, context: dict[str, Any]) -> str | None:
        return Failure("refused", "the remote said no")


class Loader(ActionLoader):
    extra: ClassVar[dict[str, type[BaseAction]]] = {
        "boom": BoomAction,
        "not_found": NotFoundAction,
        "refused": RefusedAction,
    }

    def names(self) -> frozenset[str]:
        return super().names() | frozenset(self.extra)

    def resolve(self, action_type: str) -> type[BaseAction]:
        return self.extra.get(action_type) or super().resolve(action_type)


@pytest.fixture
def start(machine: StartMachine) -> StartMachine:
    async def starter(text: str, name: str = "worker", **options: Any) -> Any:
        options.setdefault("loader", Loader())
        return await machine(text, name, **options)

    return starter


def job_of(store: SQLiteStore, job_id: str) -> Job:
    job = store.get_job(job_id)
    assert job is not None
    return job


def history(store: SQLiteStore, name: str) -> list[tuple[str | None, str, str | None]]:
    rows = reversed(store.history(machine=name, limit=5000))
    return [(r.from_state, r.to_state, r.event) for r in rows]


def worker(work: str, extra: str = "") -> str:
    """A worker claiming in `waiting` and running `work` (YAML action list) in `processing`."""
    return f"""
name: worker
initial_state: waiting
actions:
  waiting:
    - {{type: check_database_queue, job_type: task}}
  processing: {work}
transitions:
  - {{from: waiting, to: processing, event: new_job}}
  - {{from: waiting, to: waiting, event: no_jobs}}
  - {{from: processing, to: waiting, event: job_done}}
{extra}
"""


# 1. Failed work recorded as completed ------------------------------------------------------


async def test_an_error_mapping_back_to_the_claiming_state_fails_the_attempt(
    start: StartMachine, store: SQLiteStore, until: Until
) -> None:
    text = worker(
        '[{type: bash, command: "echo gone >&2; exit 3", error_mappings: {3: not_found}}]',
        "  - {from: processing, to: waiting, event: not_found}",
    )
    job = store.add_job("task", max_attempts=1)
    m = await start(text)
    await until(lambda: job_of(store, job.job_id).status in ("failed", "completed"))
    await m.engine.wait_parked()
    failed = job_of(store, job.job_id)
    assert failed.status == "failed"
    assert "exit code 3" in (failed.error_message or "")
    assert "gone" in (failed.error_message or "")
    assert ("processing", "waiting", "not_found") in history(store, "worker")


async def test_a_timeout_event_back_to_the_claiming_state_fails_the_attempt(
    start: StartMachine, store: SQLiteStore, until: Until
) -> None:
    text = worker(
        '[{type: bash, command: "sleep 30", timeout: 0.2, timeout_event: timed_out}]',
        "  - {from: processing, to: waiting, event: timed_out}",
    )
    job = store.add_job("task", max_attempts=1)
    await start(text)
    await until(lambda: job_of(store, job.job_id).status == "failed", timeout=15)
    assert "timed out" in (job_of(store, job.job_id).error_message or "")


async def test_a_declared_failure_event_of_a_custom_action_fails_the_attempt(
    start: StartMachine, store: SQLiteStore, until: Until
) -> None:
    text = worker("[{type: not_found}]", "  - {from: processing, to: waiting, event: not_found}")
    job = store.add_job("task", max_attempts=1)
    await start(text)
    await until(lambda: job_of(store, job.job_id).status == "failed")
    assert "not_found" in (job_of(store, job.job_id).error_message or "")


async def test_a_failure_with_its_reason_and_options_failure_events(
    start: StartMachine, store: SQLiteStore, until: Until
) -> None:
    text = worker(
        "[{type: refused}]",
        "  - {from: processing, to: waiting, event: refused}\n"
        "options: {failure_events: [rejected]}",
    )
    first = store.add_job("task", max_attempts=1)
    await start(text)
    await until(lambda: job_of(store, first.job_id).status == "failed")
    assert job_of(store, first.job_id).error_message == "the remote said no"


async def test_options_failure_events_name_failures(
    start: StartMachine, store: SQLiteStore, until: Until
) -> None:
    text = worker(
        "[{type: log, message: nope, success: rejected}]",
        "  - {from: processing, to: waiting, event: rejected}\n"
        "options: {failure_events: [rejected]}",
    )
    job = store.add_job("task", max_attempts=1)
    await start(text)
    await until(lambda: job_of(store, job.job_id).status == "failed")
    assert "rejected" in (job_of(store, job.job_id).error_message or "")


async def test_success_back_to_the_claiming_state_still_completes(
    start: StartMachine, store: SQLiteStore, until: Until
) -> None:
    job = store.add_job("task")
    await start(worker('[{type: bash, command: "true"}]'))
    await until(lambda: job_of(store, job.job_id).status == "completed")


# 3. Wedged worker ----------------------------------------------------------------------------


async def test_a_failure_without_a_transition_goes_back_to_the_claiming_state(
    start: StartMachine,
    store: SQLiteStore,
    until: Until,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="statemachine_engine")
    first = store.add_job("task", job_id="j1", data={"code": 1}, max_attempts=1)
    second = store.add_job("task", job_id="j2", data={"code": 0}, max_attempts=1)
    text = worker('[{type: bash, command: "exit {data.code}", success: job_done}]')
    m = await start(text)
    await until(lambda: job_of(store, second.job_id).status == "completed")
    await m.engine.wait_parked()
    assert m.engine.state == "waiting"
    assert job_of(store, first.job_id).status == "failed"
    assert "exit code 1" in (job_of(store, first.job_id).error_message or "")
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert any("j1" in r.getMessage() and "exit code 1" in r.getMessage() for r in errors)


async def test_an_exception_keeps_its_type_and_fails_the_attempt(
    start: StartMachine, store: SQLiteStore, until: Until
) -> None:
    job = store.add_job("task", max_attempts=1)
    m = await start(worker("[{type: boom}]"))
    await until(lambda: job_of(store, job.job_id).status == "failed")
    assert job_of(store, job.job_id).error_message == "KeyError: 'payload'"
    await m.engine.wait_parked()
    assert m.engine.state == "waiting"


async def test_options_on_error_per_machine_and_per_state(
    start: StartMachine, store: SQLiteStore, until: Until
) -> None:
    text = """
name: worker
initial_state: waiting
states: [waiting, processing, packing, broken, cleanup]
actions:
  waiting: [{type: check_database_queue, job_type: task}]
  processing: [{type: boom}]
  packing: [{type: boom}]
transitions:
  - {from: waiting, to: processing, event: new_job}
  - {from: waiting, to: waiting, event: no_jobs}
  - {from: processing, to: waiting, event: job_done}
  - {from: packing, to: waiting, event: job_done}
  - {from: [broken, cleanup], to: waiting, event: reset}
options:
  on_error: {"*": broken, processing: cleanup}
"""
    job = store.add_job("task", max_attempts=1)
    m = await start(text)
    await m.engine.wait_for_state("cleanup")
    await until(lambda: job_of(store, job.job_id).status == "failed")
    assert ("processing", "cleanup", "error") in history(store, "worker")


async def test_a_failure_holding_no_job_stays_and_raises_an_alert(
    start: StartMachine, store: SQLiteStore
) -> None:
    m = await start(
        """
name: lonely
initial_state: s
actions:
  s: [{type: boom}]
transitions:
  - {from: s, to: t, event: go}
""",
        "lonely",
    )
    await m.engine.wait_parked()
    assert m.engine.state == "s"
    alerts = [r.payload for r in store.realtime_since() if r.kind == "error"]
    assert alerts and "KeyError" in alerts[-1]["error"]


# 4. Silent stalls ----------------------------------------------------------------------------


async def test_an_event_without_a_transition_is_a_warning_naming_state_action_event(
    start: StartMachine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="statemachine_engine")
    m = await start(
        """
name: parker
initial_state: s
actions:
  s: [{type: set_context, key: a, value: 1, success: done}]
transitions:
  - {from: s, to: t, event: go}
""",
        "parker",
    )
    await m.engine.wait_parked()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("'done'" in w and "SetContextAction" in w and "'s'" in w for w in warnings)


# 5. Instant loops ----------------------------------------------------------------------------

BOUNCE = """
name: bouncer
initial_state: a
actions:
  a: [{type: set_context, key: n, value: 1, success: go}]
  b: [{type: log, message: back, success: back}]
transitions:
  - {from: a, to: b, event: go}
  - {from: b, to: a, event: back}
"""


async def test_an_instant_loop_is_stopped_naming_its_cycle(
    start: StartMachine, store: SQLiteStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="statemachine_engine")
    limited = BOUNCE.replace(
        "initial_state: a", "initial_state: a\noptions: {max_instant_steps: 50}"
    )
    m = await start(limited, "bouncer")
    await m.engine.wait_parked(timeout=10)
    steps = history(store, "bouncer")
    assert 50 <= len(steps) <= 60
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    cycles = ("a --go--> b --back--> a", "b --back--> a --go--> b")
    assert any("loop_detected" in e and any(c in e for c in cycles) for e in errors), errors
    alerts = [r.payload for r in store.realtime_since(limit=5000) if r.kind == "error"]
    assert any("loop_detected" in a["error"] for a in alerts)


async def test_the_default_loop_guard_bounds_staging_and_memory(
    start: StartMachine, store: SQLiteStore
) -> None:
    from statemachine_engine.core.groupcommit import MAX_STAGED

    m = await start(BOUNCE, "bouncer")
    most = 0
    original = m.engine.commits.stage

    def spy(step: Any, after: Any) -> None:
        nonlocal most
        original(step, after)
        most = max(most, len(m.engine.commits._steps))

    m.engine.commits.stage = spy  # type: ignore[method-assign]
    await m.engine.wait_parked(timeout=30)
    assert most <= MAX_STAGED
    assert 1000 <= len(history(store, "bouncer")) <= 1010


async def test_a_job_drain_of_instant_jobs_is_not_a_loop(
    start: StartMachine, store: SQLiteStore, until: Until
) -> None:
    for n in range(120):
        store.add_job("task", job_id=f"j{n}")
    text = worker(
        "[{type: log, message: hi, success: job_done}]", "options: {max_instant_steps: 20}"
    )
    await start(text)
    await until(lambda: store.count_jobs().get("completed", 0) == 120, timeout=30)


async def test_wait_for_jobs_on_a_job_the_machine_holds_is_an_error(
    start: StartMachine, store: SQLiteStore, until: Until
) -> None:
    job = store.add_job("task", job_id="mine", max_attempts=1)
    text = worker(
        "[{type: wait_for_jobs, job_ids: ['{job_id}']}]",
    )
    await start(text)
    await until(lambda: job_of(store, job.job_id).status == "failed", timeout=10)
    assert "held by this machine" in (job_of(store, job.job_id).error_message or "")


async def test_claim_job_is_not_completed_by_looping_back(
    start: StartMachine, store: SQLiteStore, until: Until
) -> None:
    store.add_job("task", job_id="c1")
    m = await start(
        """
name: controller
initial_state: claiming
actions:
  claiming:
    - {type: claim_job, job_id: c1, success: claimed}
transitions:
  - {from: claiming, to: resting, event: claimed}
  - {from: resting, to: claiming, event: again}
  - {from: resting, to: done, event: finish}
""",
        "controller",
    )
    await m.engine.wait_for_state("resting")
    store.send_event("controller", "again")
    m.engine.wake()
    await until(lambda: store.list_events(target="controller", status="pending") == [])
    await m.engine.wait_for_state("resting")
    assert ("resting", "claiming", "again") in history(store, "controller")
    assert job_of(store, "c1").status == "processing"


async def test_complete_job_and_fail_job_take_a_job_id(
    start: StartMachine, store: SQLiteStore, until: Until
) -> None:
    store.add_job("task", job_id="x1")
    store.add_job("task", job_id="x2", max_attempts=1)
    m = await start(
        """
name: finisher
initial_state: one
actions:
  one:
    - {type: claim_job, job_id: x1, success: next}
  two:
    - {type: complete_job, job_id: x1, result: fine, success: next}
  three:
    - {type: claim_job, job_id: x2, success: next}
  four:
    - {type: fail_job, job_id: x2, message: bad, retry: false}
    - {type: complete_job, job_id: nope, error: missing}
transitions:
  - {from: one, to: two, event: next}
  - {from: two, to: three, event: next}
  - {from: three, to: four, event: next}
  - {from: four, to: end, event: missing}
""",
        "finisher",
    )
    assert await asyncio.wait_for(m.task, 10) == 0
    assert (job_of(store, "x1").status, job_of(store, "x1").result) == ("completed", "fine")
    assert (job_of(store, "x2").status, job_of(store, "x2").error_message) == ("failed", "bad")
    assert "not held by this machine" in m.engine.context["last_error"]


async def test_debug_logs_the_traceback_of_an_action_exception(
    start: StartMachine, store: SQLiteStore, until: Until, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="statemachine_engine")
    job = store.add_job("task", max_attempts=1)
    await start(worker("[{type: boom}]"), tracebacks=True)
    await until(lambda: job_of(store, job.job_id).status == "failed")
    raised = [r for r in caplog.records if r.exc_info and "BoomAction raised" in r.getMessage()]
    assert raised and raised[0].exc_info is not None
    assert raised[0].exc_info[0] is KeyError
