"""A job added from Python (`Store.add_job`, `add_jobs`, `JobModel.create_job`) wakes a parked
worker at once, as the CLI and the UI do: the store rings the doorbells after its commit. The
worker's safety re-check is an hour away, so a missed wake-up fails the test."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from statemachine_engine.database import Database, JobModel, NewJob
from statemachine_engine.database.sqlite import SQLiteStore

CONFIG = textwrap.dedent(
    """
    name: parked worker
    initial_state: waiting
    states: [waiting, processing]
    events: [new_job, no_jobs, job_done]
    transitions:
      - from: waiting
        to: processing
        event: new_job
        actions:
          - type: check_database_queue
            params: {job_type: work}
      - {from: waiting, to: waiting, event: no_jobs}
      - from: processing
        to: waiting
        event: job_done
        actions:
          - {type: log, message: "done {job_id}", success: job_done}
    """
).lstrip()
PARKED = ("--lease", "5", "--heartbeat", "1", "--safety-interval", "3600")


@pytest.mark.timeout(120)
def test_jobs_added_from_python_wake_a_parked_worker(kit: Any, procs: Any, db: SQLiteStore) -> None:
    def done(*ids: str) -> bool:
        jobs = [db.get_job(i) for i in ids]
        return all(j is not None and j.status == "completed" for j in jobs)

    # The step that completes a job also claims the next one: once "zero" is completed the
    # worker has found the queue empty and parks; what follows needs a wake-up.
    db.add_job("work", job_id="zero")
    procs.machine(procs.config("w", CONFIG), "w", defaults=PARKED)
    kit.wait_until(lambda: done("zero"), 30, "job 'zero' completed")
    db.add_job("work", job_id="one")
    kit.wait_until(lambda: done("one"), 20, "job 'one' completed")
    db.add_jobs([NewJob("work", job_id="two"), NewJob("work", job_id="three")])
    kit.wait_until(lambda: done("two", "three"), 20, "jobs 'two' and 'three' completed")
    with Database(db.url) as opened:
        JobModel(opened).create_job("work", job_id="four")
    kit.wait_until(lambda: done("four"), 20, "job 'four' completed")
