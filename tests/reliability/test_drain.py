"""Load on one SQLite file: 8 processes racing to claim, 8 real worker processes draining
the queue, and 8 writers with a reader (catalogue items 1, 21 and 13). Pass: every job
completed exactly once, none left `processing`, no "database is locked" surfaced, the
database intact and its WAL bounded. The full-size drain (8 x 5,000) is `bench/drain.py`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from statemachine_engine.database import NewJob
from statemachine_engine.database.sqlite import SQLiteStore

WORKERS = 8

CLAIMER = """
import json, sys
from statemachine_engine.database.sqlite import SQLiteStore
from statemachine_engine.errors import StoreError
store = SQLiteStore(sys.argv[1])
owner = sys.argv[2]
claims, errors = [], []
while True:
    try:
        job = store.claim_job("race", owner, lease_seconds=60)
        if job is None:
            break
        claims.append((job.job_id, job.attempts))
        if not store.complete_job(job.job_id, owner, {"by": owner}):
            errors.append("fenced " + job.job_id)
    except StoreError as exc:
        errors.append(str(exc))
        if len(errors) > 50:
            break
print(json.dumps({"claims": claims, "errors": errors}))
"""

DRAIN = """
name: drain worker
initial_state: waiting
states: [waiting, processing]
events: [new_job, no_jobs, done]
transitions:
  - from: waiting
    to: processing
    event: new_job
    actions:
      - type: check_database_queue
        params: {job_type: drain}
  - {from: waiting, to: waiting, event: no_jobs}
  - from: processing
    to: waiting
    event: done
    actions:
      - type: log
        params: {message: "job {job_id}", level: debug, success: done}
"""


def bulk_add(store: SQLiteStore, job_type: str, count: int) -> None:
    """Enqueue `count` jobs in one transaction (one add_job per job would fsync each)."""
    store.add_jobs(
        NewJob(job_type, {"n": n}, job_id=f"{job_type}-{n:05d}", priority=1 + n % 5)
        for n in range(count)
    )


@pytest.mark.timeout(60)
def test_claim_race_8_processes_1000_jobs(db: SQLiteStore, db_path: Path) -> None:
    bulk_add(db, "race", 1000)
    started = time.monotonic()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIMER, str(db_path), f"claimer-{n}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(WORKERS)
    ]
    reports = []
    for proc in procs:
        out, err = proc.communicate(timeout=50)
        assert proc.returncode == 0, err
        reports.append(json.loads(out))
    elapsed = time.monotonic() - started
    print(f"claim race: 1000 jobs, {WORKERS} processes, {elapsed:.1f} s")
    assert [r["errors"] for r in reports] == [[]] * WORKERS
    claims = [tuple(c) for r in reports for c in r["claims"]]
    assert len(claims) == len(set(claims)) == 1000
    assert {attempt for _, attempt in claims} == {1}
    assert db.count_jobs()["completed"] == 1000
    assert elapsed < 120  # a bound against hangs; speed is measured in bench/


@pytest.mark.timeout(180)
def test_8_worker_processes_drain_the_queue_exactly_once(
    procs: Any, db: SQLiteStore, db_path: Path, kit: Any
) -> None:
    jobs = int(os.environ.get("RELIABILITY_DRAIN_JOBS", "5000"))
    config = procs.config("drain", DRAIN)
    bulk_add(db, "drain", jobs)
    started = time.monotonic()
    workers = [
        procs.machine(config, f"drain-{n}", "--log-level", "WARNING") for n in range(WORKERS)
    ]
    kit.wait_until(lambda: db.count_jobs()["completed"] == jobs, 150, f"{jobs} jobs completed")
    elapsed = time.monotonic() - started
    print(f"drain: {jobs} jobs, {WORKERS} worker processes, {elapsed:.1f} s")
    assert db.count_jobs() == {
        "pending": 0,
        "processing": 0,
        "completed": jobs,
        "failed": 0,
        "cancelled": 0,
    }
    # A job is re-claimed only if its worker could not renew the lease for 2 s (starved of
    # the write lock on an overloaded host); its first completion is then fenced.
    retried = kit.sql(db_path, "SELECT job_id, attempts, errors FROM jobs WHERE attempts != 1")
    print(f"re-claimed after lease expiry: {len(retried)}")
    assert len(retried) <= jobs // 200, retried
    assert all("expired" in errors for _, _, errors in retried)
    completed = Counter(
        json.loads(payload)["job_id"]
        for (payload,) in kit.sql(
            db_path,
            "SELECT payload FROM realtime_events WHERE kind = 'job'"
            " AND json_extract(payload, '$.status') = 'completed'",
        )
    )
    assert len(completed) == jobs and set(completed.values()) == {1}, "each completed once"
    for worker in workers:
        assert worker.poll() is None
        log = procs.log(worker)
        assert "locked" not in log and "Traceback" not in log, log[-2000:]
    assert kit.integrity_ok(db_path)


WRITER = """
import sys
from statemachine_engine.database.sqlite import SQLiteStore
store = SQLiteStore(sys.argv[1])
name = sys.argv[2]
for n in range(int(sys.argv[3])):
    store.add_job("w", {"blob": "x" * 2000}, job_id=f"{name}-{n}")
    store.send_event("reader", "ping", {"n": n}, source=name)
print("ok")
"""


@pytest.mark.timeout(60)
def test_8_writers_and_a_reader_keep_the_database_intact(
    db: SQLiteStore, db_path: Path, kit: Any
) -> None:
    per_writer = 150
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(db_path), f"w{n}", str(per_writer)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(WORKERS)
    ]
    reads = 0
    wal = Path(str(db_path) + "-wal")
    biggest_wal = 0
    while any(w.poll() is None for w in writers):
        db.count_jobs()  # the reader, like the UI polling the queue
        db.realtime_since(0, limit=50)
        reads += 1
        biggest_wal = max(biggest_wal, wal.stat().st_size if wal.exists() else 0)
    for writer in writers:
        out, err = writer.communicate(timeout=30)
        assert writer.returncode == 0 and out.strip() == "ok", err
        assert "locked" not in err
    assert db.count_jobs()["pending"] == WORKERS * per_writer
    assert reads > 10
    assert biggest_wal < 64 * 1024 * 1024
    assert kit.integrity_ok(db_path)
    # With no reader pinning it, a checkpoint resets the WAL.
    db.conn.rows("PRAGMA wal_checkpoint(TRUNCATE)")
    assert not wal.exists() or wal.stat().st_size == 0
