"""Claim exclusivity: real processes racing on one SQLite file, and a model-based test of the
queue rules on a virtual clock (RELIABILITY-TESTS #1, #12, #20)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from statemachine_engine.clock import VirtualClock
from statemachine_engine.database.sqlite import SQLiteStore

JOBS = 400
WORKERS = 6

# A worker process. "sync" lines are barriers: the worker waits for a line on stdin, so all
# workers begin each phase together. Phase 1 opens the store (and in "drain" mode claims one
# job and holds it); phase 2 drains the queue (claim -> complete until empty). The last line
# is a JSON report; a StoreError ends the worker early with that error in its report.
_WORKER = """
import json, sys
from statemachine_engine.database.sqlite import SQLiteStore
from statemachine_engine.errors import StoreError

path, owner, mode = sys.argv[1], sys.argv[2], sys.argv[3]
claims, errors = [], []

def sync():
    print("sync", flush=True)
    sys.stdin.readline()

def claim(store):
    job = store.claim_job("race", owner, lease_seconds=600)
    if job is not None:
        claims.append([job.job_id, job.attempts])
    return job

def complete(store, job):
    if not store.complete_job(job.job_id, owner, {"by": owner}):
        errors.append(f"completion of {job.job_id} was fenced")

try:
    sync()
    store = SQLiteStore(path)
    held = None
    if mode == "add":
        job = store.add_job("race", {"by": owner}, job_id="J1", if_absent=True)
        claims.append([job.job_id, job.data["by"]])
    if mode == "drain":
        held = claim(store)
    sync()
    if held is not None:
        complete(store, held)
        while (job := claim(store)) is not None:
            complete(store, job)
except StoreError as exc:
    errors.append(str(exc))
print(json.dumps({"claims": claims, "errors": errors}), flush=True)
"""


def run_workers(db: Path, mode: str, count: int, timeout: float) -> dict[str, dict[str, Any]]:
    """Start count workers, move them through the barriers together, and collect each one's
    report by owner."""
    deadline = time.monotonic() + timeout
    procs = {
        f"w{n}@host:{n}": subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(db), f"w{n}@host:{n}", mode],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(count)
    }
    reports: dict[str, dict[str, Any]] = {}
    try:
        for _barrier in range(2):
            for owner, proc in procs.items():
                assert proc.stdout is not None
                line = proc.stdout.readline().strip()
                assert line == "sync", f"{owner} stopped early: {line or proc.stderr}"
            for proc in procs.values():
                assert proc.stdin is not None
                proc.stdin.write("go\n")
                proc.stdin.flush()
        for owner, proc in procs.items():
            out, err = proc.communicate(timeout=max(0.1, deadline - time.monotonic()))
            assert proc.returncode == 0, err
            reports[owner] = json.loads(out.strip().splitlines()[-1])
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return reports


@pytest.mark.timeout(60)
def test_processes_never_claim_the_same_job(tmp_path: Path) -> None:
    db = tmp_path / "race.db"
    store = SQLiteStore(str(db))
    for n in range(JOBS):
        store.add_job("race", {"n": n}, job_id=f"J{n:04d}", priority=1 + n % 5)

    started = time.monotonic()
    reports = run_workers(db, "drain", WORKERS, timeout=40)
    elapsed = time.monotonic() - started

    assert [r["errors"] for r in reports.values()] == [[]] * WORKERS
    claims = [(job_id, attempt) for r in reports.values() for job_id, attempt in r["claims"]]
    assert len(claims) == JOBS
    assert len(set(claims)) == JOBS
    assert {job_id for job_id, _ in claims} == {f"J{n:04d}" for n in range(JOBS)}
    assert {attempt for _, attempt in claims} == {1}
    assert all(r["claims"] for r in reports.values()), "every worker held a job at once"
    assert store.count_jobs() == {
        "pending": 0,
        "processing": 0,
        "completed": JOBS,
        "failed": 0,
        "cancelled": 0,
    }
    winners = {owner for owner, r in reports.items() for _ in r["claims"]}
    for job in store.list_jobs(limit=JOBS):
        assert job.attempts == 1
        assert job.result["by"] in winners
    completions = Counter(
        r.payload["job_id"]
        for r in store.realtime_since(limit=10 * JOBS)
        if r.kind == "job" and r.payload["status"] == "completed"
    )
    assert set(completions.values()) == {1} and len(completions) == JOBS
    store.close()
    assert elapsed < 120, f"draining {JOBS} jobs with {WORKERS} processes took {elapsed:.1f}s"


@pytest.mark.timeout(90)
def test_processes_opening_a_fresh_file_migrate_once(tmp_path: Path) -> None:
    for round_ in range(3):  # the WAL switch race is rare; see test_sqlite_specifics too
        db = tmp_path / f"fresh{round_}.db"
        reports = run_workers(db, "open", WORKERS, timeout=40)
        assert [r["errors"] for r in reports.values()] == [[]] * WORKERS
        store = SQLiteStore(str(db))
        names = [r["name"] for r in store.conn.rows("SELECT name FROM schema_migrations")]
        assert names and len(names) == len(set(names))
        assert store.conn.rows("PRAGMA journal_mode") == [{"journal_mode": "wal"}]
        store.close()


@pytest.mark.timeout(60)
def test_concurrent_add_job_if_absent_keeps_one_row(tmp_path: Path) -> None:
    db = tmp_path / "add.db"
    SQLiteStore(str(db)).close()
    reports = run_workers(db, "add", WORKERS, timeout=40)
    assert [r["errors"] for r in reports.values()] == [[]] * WORKERS
    store = SQLiteStore(str(db))
    [job] = store.list_jobs()
    assert {tuple(r["claims"][0]) for r in reports.values()} == {("J1", job.data["by"])}
    store.close()


@dataclass
class ModelJob:
    """What the model expects of one job."""

    seq: int
    priority: int
    max_attempts: int
    run_after: float
    created_at: float
    status: str = "pending"
    attempts: int = 0
    owner: str | None = None
    expires: float | None = None


OWNERS = st.sampled_from(["a@h:1", "b@h:2", "c@h:3"])
LEASES = st.sampled_from([3.0, 5.0])
PICK = st.integers(min_value=0, max_value=10_000)


class QueueModel(RuleBasedStateMachine):
    """The store's queue against an in-memory model of the same rules.

    `grants` keeps every lease ever handed out, stale ones included, so heartbeat, complete,
    fail and release are also tried by owners who lost their lease (fencing).
    """

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="sme-model-")
        self.clock = VirtualClock()
        self.store = SQLiteStore(f"{self.dir}/model.db", clock=self.clock)
        self.jobs: dict[str, ModelJob] = {}
        self.grants: list[tuple[str, str]] = []

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.dir)

    def _expire_exhausted(self) -> None:
        now = self.clock.now()
        for job in self.jobs.values():
            expired = job.expires is not None and job.expires < now
            if job.status == "processing" and expired and job.attempts >= job.max_attempts:
                job.status, job.owner, job.expires = "failed", None, None

    def _runnable(self, job: ModelJob) -> bool:
        now = self.clock.now()
        if job.status == "pending":
            return job.run_after <= now
        return (
            job.status == "processing"
            and job.expires is not None
            and job.expires < now
            and job.attempts < job.max_attempts
        )

    def _grant(self, pick: int) -> tuple[str, str, bool]:
        job_id, owner = self.grants[pick % len(self.grants)]
        job = self.jobs[job_id]
        return job_id, owner, job.status == "processing" and job.owner == owner

    def _add(self, priority: int, max_attempts: int, delay: float | None) -> None:
        now = self.clock.now()
        run_after = None if delay is None else now + delay
        job = self.store.add_job(
            "t", priority=priority, max_attempts=max_attempts, run_after=run_after
        )
        self.jobs[job.job_id] = ModelJob(
            seq=len(self.jobs),
            priority=priority,
            max_attempts=max_attempts,
            run_after=now if run_after is None else run_after,
            created_at=now,
        )

    @initialize(priorities=st.lists(st.integers(1, 5), min_size=1, max_size=6))
    def start(self, priorities: list[int]) -> None:
        for n, priority in enumerate(priorities):
            self._add(priority, 1 + n % 3, None)

    @rule(
        priority=st.integers(1, 5),
        max_attempts=st.integers(1, 3),
        delay=st.sampled_from([None, 0.0, 2.0, 7.0]),
    )
    def add(self, priority: int, max_attempts: int, delay: float | None) -> None:
        self._add(priority, max_attempts, delay)

    @rule(owner=OWNERS, lease=LEASES)
    def claim(self, owner: str, lease: float) -> None:
        self._expire_exhausted()
        candidates = [(job_id, j) for job_id, j in self.jobs.items() if self._runnable(j)]
        expected = min(
            candidates,
            key=lambda c: (c[1].priority, c[1].run_after, c[1].created_at, c[1].seq),
            default=None,
        )
        got = self.store.claim_job("t", owner, lease_seconds=lease)
        if expected is None:
            assert got is None, f"{got} was claimable"
            return
        assert got is not None, f"expected {expected[0]} to be claimable"
        assert got.job_id == expected[0], "claim order is priority, then time"
        job = expected[1]
        assert job.status not in ("completed", "failed"), "a finished job was claimed again"
        if job.status == "processing":
            assert job.expires is not None and job.expires < self.clock.now(), "live lease stolen"
        job.status, job.owner, job.expires = "processing", owner, self.clock.now() + lease
        job.attempts += 1
        assert got.attempts == job.attempts
        self.grants.append((got.job_id, owner))

    @precondition(lambda self: self.grants)
    @rule(pick=PICK, lease=LEASES)
    def heartbeat(self, pick: int, lease: float) -> None:
        job_id, owner, holds = self._grant(pick)
        assert self.store.heartbeat(job_id, owner, lease) is holds
        if holds:
            self.jobs[job_id].expires = self.clock.now() + lease

    @precondition(lambda self: self.grants)
    @rule(pick=PICK)
    def complete(self, pick: int) -> None:
        job_id, owner, holds = self._grant(pick)
        assert self.store.complete_job(job_id, owner) is holds
        if holds:
            job = self.jobs[job_id]
            job.status, job.owner, job.expires = "completed", None, None

    @precondition(lambda self: self.grants)
    @rule(pick=PICK, retry_delay=st.sampled_from([None, 0.0, 1.0, 4.0]))
    def fail(self, pick: int, retry_delay: float | None) -> None:
        job_id, owner, holds = self._grant(pick)
        job = self.jobs[job_id]
        expected: str | None = None
        if holds:
            final = retry_delay is None or job.attempts >= job.max_attempts
            expected = "failed" if final else "pending"
            job.status, job.owner, job.expires = expected, None, None
            job.run_after = self.clock.now() + (retry_delay or 0.0)
        assert self.store.fail_job(job_id, owner, "boom", retry_delay=retry_delay) == expected

    @precondition(lambda self: self.grants)
    @rule(pick=PICK)
    def release(self, pick: int) -> None:
        job_id, owner, holds = self._grant(pick)
        assert self.store.release_job(job_id, owner) is holds
        if holds:
            job = self.jobs[job_id]
            job.status, job.owner, job.expires = "pending", None, None
            job.attempts -= 1

    @rule(seconds=st.sampled_from([0.5, 1.0, 3.0, 6.0]))
    def advance_clock(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @invariant()
    def store_matches_model(self) -> None:
        stored = {job.job_id: job for job in self.store.list_jobs(limit=10_000)}
        assert stored.keys() == self.jobs.keys()
        for job_id, model in self.jobs.items():
            job = stored[job_id]
            assert (job.status, job.attempts, job.lease_owner) == (
                model.status,
                model.attempts,
                model.owner,
            ), job_id
            assert job.lease_expires_at == model.expires, job_id

    @invariant()
    def leases_and_attempts_are_sane(self) -> None:
        for job in self.store.list_jobs(limit=10_000):
            assert 0 <= job.attempts <= job.max_attempts
            if job.status == "processing":
                assert job.lease_owner is not None and job.lease_expires_at is not None
            else:
                assert job.lease_owner is None and job.lease_expires_at is None
            if job.status == "pending":
                assert job.attempts < job.max_attempts


QueueModel.TestCase.settings = settings(
    max_examples=30,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_queue_model = QueueModel.TestCase
