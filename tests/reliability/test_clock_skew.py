"""RELIABILITY-TESTS #18, clock skew on PostgreSQL: a worker whose wall clock runs 10 minutes
ahead must not take over (or fail for good) a job whose holder is alive and heartbeating.

The PostgreSQL store reads the server's clock (database.postgres.clock.ServerClock): the
skewed worker's leases and comparisons are on the same time line as everyone else's."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SKEW_SECONDS = 600
SITECUSTOMIZE = """\
import os
import time

_skew = float(os.environ.get("SKEWED_CLOCK_SECONDS", "0"))
if _skew:
    _real_time = time.time
    time.time = lambda: _real_time() + _skew
"""


@pytest.fixture
def pg_url(tmp_path: Path) -> Iterator[str]:
    from statemachine_engine.database.postgres import testing as pg_testing

    schema = "k_" + hashlib.md5(str(tmp_path).encode(), usedforsecurity=False).hexdigest()[:20]
    url = pg_testing.with_schema(pg_testing.check_server(), schema)
    yield url
    pg_testing.drop_schema(url)


def runs(workdir: Path, job_id: str) -> int:
    path = workdir / f"{job_id}.runs"
    return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.mark.timeout(90)
def test_a_worker_ten_minutes_ahead_steals_no_live_lease(
    kit: Any, procs: Any, pg_url: str, workdir: Path, env: dict[str, str], tmp_path: Path
) -> None:
    from statemachine_engine.database.postgres import PostgresStore

    skewed = tmp_path / "skew"
    skewed.mkdir()
    (skewed / "sitecustomize.py").write_text(SITECUSTOMIZE)
    skew_env = {**env, "PYTHONPATH": str(skewed), "SKEWED_CLOCK_SECONDS": str(SKEW_SECONDS)}
    store = PostgresStore(pg_url)
    try:
        procs.db_url = pg_url
        config = procs.config("worker", kit.worker_yaml("echo run >> {job_id}.runs; sleep 4"))
        store.add_job("task", job_id="held", max_attempts=1)
        procs.machine(config, "honest")
        kit.wait_until(lambda: runs(workdir, "held") == 1, 20, "the honest worker started the job")
        procs.machine(config, "ahead", env=skew_env)
        for n in range(3):
            store.add_job("task", job_id=f"j{n}")

        def settled() -> bool:
            jobs = {j.job_id: j for j in store.list_jobs()}
            return len(jobs) == 4 and all(
                j.status in {"completed", "failed"} for j in jobs.values()
            )

        kit.wait_until(settled, 40, "every job settled")
        for job in store.list_jobs():
            assert (job.job_id, job.status, job.attempts) == (job.job_id, "completed", 1)
            assert runs(workdir, job.job_id) == 1, job.job_id
    finally:
        store.close()
