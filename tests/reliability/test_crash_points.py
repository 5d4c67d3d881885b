"""RELIABILITY-TESTS #19, random crash points: four workers drain a queue while one of them,
chosen at random, is killed with SIGKILL (with its process group) at a random instant — in a
claim, a heartbeat, a completion or a bash child — 50 times, each restarted at once. Pass:
the database stays intact, no job is lost, and each job is completed by exactly one step."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from statemachine_engine.database.sqlite import SQLiteStore

JOBS = 600
WORKERS = 4
KILLS = 50
COMMAND = "mkdir -p runs; echo $$ >> runs/{job_id}; sleep 0.05"


@pytest.mark.timeout(150)
def test_fifty_random_kills_lose_and_repeat_nothing(
    kit: Any, procs: Any, db: SQLiteStore, db_path: Path, workdir: Path
) -> None:
    seed = int(os.environ.get("CRASH_POINTS_SEED", random.randrange(1 << 30)))
    print(f"CRASH_POINTS_SEED={seed}")
    rng = random.Random(seed)
    for n in range(JOBS):
        db.add_job("task", job_id=f"j{n:04d}", max_attempts=20)
    config = procs.config("worker", kit.worker_yaml(COMMAND))
    workers = {f"w{n}": procs.machine(config, f"w{n}") for n in range(WORKERS)}
    kit.wait_until(lambda: db.count_jobs()["completed"] > 0, 30, "the drain started")
    for kill in range(KILLS):
        time.sleep(rng.uniform(0.02, 0.35))  # the random crash instant, not a wait
        name = rng.choice(sorted(workers))
        victim = workers[name]
        if victim.poll() is None:
            os.killpg(victim.pid, signal.SIGKILL)
        victim.wait(timeout=10)
        workers[name] = procs.machine(config, name)
        if kill % 10 == 9:
            assert kit.integrity_ok(db_path), f"integrity_check failed after kill {kill + 1}"

    at_last_kill = db.count_jobs()["completed"]
    print(f"{at_last_kill} of {JOBS} jobs completed at the last kill")
    assert at_last_kill < JOBS, "the drain ended before the kills did: raise JOBS"
    kit.wait_until(lambda: db.count_jobs()["completed"] == JOBS, 90, f"all {JOBS} jobs completed")
    assert kit.integrity_ok(db_path)
    counts = db.count_jobs()
    assert counts["completed"] == JOBS and counts["failed"] == 0, counts
    steps = dict(
        kit.sql(
            db_path,
            "SELECT job_id, COUNT(*) FROM transitions WHERE event = 'job_done'"
            " AND job_id IS NOT NULL GROUP BY job_id",
        )
    )
    twice = {job: n for job, n in steps.items() if n != 1}
    assert not twice, f"jobs completed by more than one step: {twice}"
    assert len(steps) == JOBS, "a completed job has no job_done step"
    missing = [n for n in range(JOBS) if not (workdir / "runs" / f"j{n:04d}").exists()]
    assert not missing, f"jobs completed without running: {missing[:5]}"
    assert all(p.poll() is None for p in workers.values()), "a restarted worker died"
