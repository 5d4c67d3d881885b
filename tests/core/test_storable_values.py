"""Values a step cannot store (issue 13 item 8): a `send_event` payload, a job result or a
failure reason the commit would refuse is the action's failure with the real reason when it
is staged, never a worker that dies at commit with "died while running the job"."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from statemachine_engine.core.storable import MAX_TEXT
from statemachine_engine.database.records import Job
from statemachine_engine.database.sqlite import SQLiteStore
from statemachine_engine.database.store import MAX_PAYLOAD_BYTES

StartMachine = Callable[..., Awaitable[Any]]

HALF = "x" * (MAX_PAYLOAD_BYTES // 2 + 10)

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
      - {type: check_database_queue, job_type: task}
  - {from: waiting, to: waiting, event: no_jobs}
  - from: processing
    to: waiting
    event: job_done
    actions:
%s
  - {from: processing, to: waiting, event: error}
"""


def worker(actions: str) -> str:
    return WORKER % "\n".join(f"      - {line}" for line in actions.strip().splitlines())


async def attempts_fail(m: Any, store: SQLiteStore, job_id: str) -> Job:
    def failed() -> bool:
        job = store.get_job(job_id)
        return job is not None and job.status == "failed"

    await m.engine.wait_for(failed, timeout=10)
    job = store.get_job(job_id)
    assert job is not None
    assert not m.task.done(), "the worker lives on"
    return job


async def test_a_send_event_payload_over_the_limit_fails_the_attempt_with_the_reason(
    machine: StartMachine, store: SQLiteStore
) -> None:
    store.add_job("task", {"x": HALF}, job_id="big", max_attempts=2)
    store.add_job("task", {"x": "small"}, job_id="small")
    m = await machine(
        worker(
            """
            {type: send_event, target: sink, event_type: got, payload: ["{data.x}", "{data.x}"]}
            {type: log, message: sent, success: job_done}
            """
        ),
        backoff_base=0.01,
    )
    job = await attempts_fail(m, store, "big")
    assert len(job.errors) == 2
    for error in job.errors:
        assert "payload of event 'got' for 'sink'" in error and "more than the limit" in error
        assert "died" not in error
    await m.engine.wait_for(lambda: store.get_job("small").status == "completed")  # type: ignore[union-attr]
    assert [e.payload for e in store.list_events(target="sink")] == [["small", "small"]]


async def test_a_job_result_over_the_limit_fails_the_attempt(
    machine: StartMachine, store: SQLiteStore
) -> None:
    store.add_job("task", {"x": HALF}, job_id="explicit", max_attempts=1)
    m = await machine(
        worker(
            """
            {type: complete_job, result: ["{data.x}", "{data.x}"]}
            {type: log, message: done, success: job_done}
            """
        )
    )
    job = await attempts_fail(m, store, "explicit")
    assert "result of job explicit" in job.errors[0] and "more than the limit" in job.errors[0]


async def test_an_implicit_completion_with_a_result_over_the_limit_fails_the_attempt(
    machine: StartMachine, store: SQLiteStore
) -> None:
    store.add_job("task", {"x": HALF}, job_id="implicit", max_attempts=1)
    m = await machine(
        worker(
            """
            {type: set_context, key: result, value: ["{data.x}", "{data.x}"]}
            {type: log, message: done, success: job_done}
            """
        )
    )
    job = await attempts_fail(m, store, "implicit")
    assert "result of job implicit" in job.errors[0]


async def test_a_huge_failure_reason_is_clipped_not_fatal(
    machine: StartMachine, store: SQLiteStore
) -> None:
    store.add_job("task", {"x": "y" * (MAX_PAYLOAD_BYTES - 100)}, job_id="loud", max_attempts=3)
    m = await machine(
        worker(
            """
            {type: fail_job, message: "{data.x}"}
            {type: activity_log, message: "{data.x}"}
            {type: log, message: done, success: job_done}
            """
        ),
        backoff_base=0.01,
    )
    job = await attempts_fail(m, store, "loud")
    assert len(job.errors) == 3
    assert all(len(e) < MAX_TEXT + 100 and "more characters]" in e for e in job.errors)
    lines = [r.payload["message"] for r in store.realtime_since() if r.kind == "activity"]
    assert lines and all(len(line) < MAX_TEXT + 100 for line in lines)
