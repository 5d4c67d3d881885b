"""Leases across real worker processes: a killed worker's job is taken over after its lease
expires and completed exactly once; a stopped worker's late completion is fenced; a held
job's lease is renewed while its machine lives; a job that kills its worker fails for good
after its attempts. Catalogue items 2, 3, 4 and 5."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from statemachine_engine.database.sqlite import SQLiteStore

LEASE = 2.0

# Writes "<pid of bash>" to markers/<job id>; the job `victim` sleeps on its first attempt.
SLOW_FIRST = (
    "mkdir -p markers; echo $$ >> markers/{job_id}; "
    "if [ {job_id} = victim ] && [ {current_job.attempts} = 1 ]; then sleep 10; fi"
)


def transitions(kit: Any, db_path: Path, job_id: str, event: str) -> int:
    rows = kit.sql(
        db_path, "SELECT COUNT(*) FROM transitions WHERE job_id = ? AND event = ?", (job_id, event)
    )
    return int(rows[0][0])


def done_events(kit: Any, db_path: Path, job_id: str) -> int:
    rows = kit.sql(
        db_path,
        "SELECT COUNT(*) FROM machine_events WHERE target_machine = 'sink'"
        " AND event_type = 'done' AND json_extract(payload, '$.job') = ?",
        (job_id,),
    )
    return int(rows[0][0])


def marker_pids(workdir: Path, job_id: str) -> list[int]:
    path = workdir / "markers" / job_id
    return [int(x) for x in path.read_text().split()] if path.exists() else []


@pytest.mark.timeout(40)
def test_kill_9_mid_job_another_worker_completes_it_once(
    procs: Any, db: SQLiteStore, db_path: Path, workdir: Path, kit: Any
) -> None:
    config = procs.config("worker", kit.worker_yaml(SLOW_FIRST, sink="sink"))
    db.add_job("task", {"n": 0}, job_id="victim", priority=1)
    a = procs.machine(config, "worker-a")
    kit.wait_until(lambda: marker_pids(workdir, "victim"), 10, "worker A started the victim")
    [a_bash] = marker_pids(workdir, "victim")
    b = procs.machine(config, "worker-b")
    for n in range(1, 100):
        db.add_job("task", {"n": n}, job_id=f"job-{n:03d}")
    kit.wait_until(lambda: db.count_jobs()["completed"] == 99, 20, "B drained the 99 others")

    os.killpg(a.pid, signal.SIGKILL)
    killed = time.time()
    a.wait(timeout=5)
    kit.wait_until(lambda: not kit.group_alive(a_bash), 3, "A's bash child killed with A")

    def victim_done() -> bool:
        job = db.get_job("victim")
        return job is not None and job.status == "completed"

    kit.wait_until(victim_done, LEASE + 6, "the victim completed by B")
    victim = db.get_job("victim")
    assert victim is not None and victim.started_at is not None
    assert victim.attempts == 2
    assert victim.started_at - killed < LEASE + 2.0, "B claimed it within lease + re-check"
    assert victim.errors and "expired" in victim.errors[0]
    assert len(marker_pids(workdir, "victim")) == 2
    assert transitions(kit, db_path, "victim", "job_done") == 1
    assert done_events(kit, db_path, "victim") == 1
    for n in range(1, 100):
        job = db.get_job(f"job-{n:03d}")
        assert job is not None and (job.status, job.attempts) == ("completed", 1), job
        assert len(marker_pids(workdir, job.job_id)) == 1
    rows = kit.sql(
        db_path, "SELECT job_id, COUNT(*) FROM transitions WHERE event = 'job_done' GROUP BY 1"
    )
    assert len(rows) == 100 and all(count == 1 for _, count in rows)
    assert db.count_jobs()["completed"] == 100
    assert b.poll() is None


@pytest.mark.timeout(40)
def test_late_completion_of_a_stopped_worker_is_fenced(
    procs: Any, db: SQLiteStore, db_path: Path, workdir: Path, kit: Any
) -> None:
    command = "mkdir -p markers; echo $$ >> markers/{job_id}; sleep 1.5"
    config = procs.config("worker", kit.worker_yaml(command, sink="sink"))
    db.add_job("task", job_id="j1")
    a = procs.machine(config, "worker-a")
    kit.wait_until(lambda: marker_pids(workdir, "j1"), 10, "worker A started j1")
    [a_bash] = marker_pids(workdir, "j1")
    os.killpg(a.pid, signal.SIGSTOP)
    os.killpg(a_bash, signal.SIGSTOP)
    stopped = time.monotonic()
    b = procs.machine(config, "worker-b")

    def done() -> bool:
        job = db.get_job("j1")
        return job is not None and job.status == "completed"

    kit.wait_until(done, 15, "B completed j1")
    result = db.get_job("j1")
    remaining = 2 * LEASE - (time.monotonic() - stopped)
    if remaining > 0:
        time.sleep(remaining)
    os.killpg(a_bash, signal.SIGCONT)
    os.killpg(a.pid, signal.SIGCONT)
    kit.wait_until(lambda: "lease lost" in procs.log(a), 10, "A logs that its lease is lost")
    kit.wait_until(lambda: not kit.group_alive(a_bash), 5, "A's action killed")
    time.sleep(1.0)  # give a wrongly unfenced completion the time to land

    final = db.get_job("j1")
    assert final == result, "A's late completion changed nothing"
    assert final is not None and final.lease_owner is None
    assert final.attempts == 2
    assert transitions(kit, db_path, "j1", "job_done") == 1
    assert done_events(kit, db_path, "j1") == 1
    assert a.poll() is None and b.poll() is None, "both workers alive"


@pytest.mark.timeout(30)
def test_heartbeat_keeps_a_job_running_three_leases(
    procs: Any, db: SQLiteStore, db_path: Path, workdir: Path, kit: Any
) -> None:
    command = "mkdir -p markers; echo $$ >> markers/{job_id}; sleep 6"
    config = procs.config("worker", kit.worker_yaml(command))
    db.add_job("task", job_id="long")
    a = procs.machine(config, "worker-a")
    kit.wait_until(lambda: marker_pids(workdir, "long"), 10, "worker A started the job")
    procs.machine(config, "worker-b")  # would steal the job if its lease ran out

    def done() -> bool:
        job = db.get_job("long")
        return job is not None and job.status == "completed"

    kit.wait_until(done, 15, "the long job completed")
    job = db.get_job("long")
    assert job is not None and job.attempts == 1 and job.errors == ()
    assert job.completed_at is not None and job.started_at is not None
    assert job.completed_at - job.started_at >= 3 * LEASE
    assert len(marker_pids(workdir, "long")) == 1
    owners = kit.sql(
        db_path, "SELECT machine_name FROM transitions WHERE job_id = 'long' AND event = 'job_done'"
    )
    assert owners == [("worker-a",)]
    assert a.poll() is None


POISON_COMMAND = "if [ {data.poison} = yes ]; then kill -9 $PPID; sleep 5; fi"


@pytest.mark.timeout(60)
def test_poison_job_that_kills_its_worker_fails_after_max_attempts(
    procs: Any, db: SQLiteStore, kit: Any
) -> None:
    """The poison job's command SIGKILLs its own worker; a supervisor loop restarts the
    worker. The restarted worker counts the dead attempt (same machine name and host), so
    after 3 attempts the job is failed with 3 history entries; other jobs keep flowing."""
    config = procs.config("poison", kit.worker_yaml(POISON_COMMAND))
    db.add_job("task", {"poison": "yes"}, job_id="poison", priority=1, max_attempts=3)
    for n in range(5):
        db.add_job("task", {"poison": "no"}, job_id=f"ok-{n}")
    deaths = 0
    deadline = time.monotonic() + 40
    worker = procs.machine(config, "worker")
    while True:
        job = db.get_job("poison")
        assert job is not None
        if job.status == "failed":
            break
        assert time.monotonic() < deadline, f"poison job not failed in time: {job}"
        if worker.poll() is not None:
            assert worker.returncode == -signal.SIGKILL
            deaths += 1
            worker = procs.machine(config, "worker")
        time.sleep(0.02)
    assert deaths == 3
    job = db.get_job("poison")
    assert job is not None
    assert (job.status, job.attempts) == ("failed", 3)
    assert len(job.errors) == 3 and all("died" in e for e in job.errors), job.errors
    db.add_job("task", {"poison": "no"}, job_id="after")
    kit.wait_until(lambda: db.count_jobs()["completed"] == 6, 10, "the other jobs completed")
    assert worker.poll() is None
