"""RELIABILITY-TESTS #20, a model test of the job queue: Hypothesis drives the store API
(add, claim, heartbeat, complete, fail, time passing) against a small in-memory model on
SQLite and PostgreSQL. After every step the store agrees with the model: one state per
job, at most one valid lease, attempts never above the maximum, finished jobs never
claimed again, and claims taken in priority order, then by time."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from statemachine_engine.clock import VirtualClock
from statemachine_engine.database.store import Store

LEASE = 1.05  # no sum of the time steps below lands exactly on a lease boundary
OWNERS = ("w1@host:101", "w2@host:102", "w3@host:103")


@dataclass
class ModelJob:
    job_id: str
    priority: int
    max_attempts: int
    run_after: float
    created_at: float
    seq: int
    status: str = "pending"
    attempts: int = 0
    owner: str | None = None
    expires: float | None = None


class QueueModel(RuleBasedStateMachine):
    """The store under test against the model; `store` and `clock` are set per backend."""

    store: Store
    clock: VirtualClock

    def __init__(self) -> None:
        super().__init__()
        self.job_type = "m" + uuid.uuid4().hex[:10]  # a queue of its own per example
        self.jobs: dict[str, ModelJob] = {}

    @initialize()
    def start(self) -> None:
        self.clock.advance(10.0)

    @property
    def now(self) -> float:
        return self.clock.now()

    @rule(priority=st.integers(1, 3), max_attempts=st.integers(1, 3))
    def add(self, priority: int, max_attempts: int) -> None:
        job_id = f"{self.job_type}-{len(self.jobs)}"
        job = self.store.add_job(
            self.job_type, {}, job_id=job_id, priority=priority, max_attempts=max_attempts
        )
        assert job.status == "pending"
        self.jobs[job_id] = ModelJob(
            job_id, priority, max_attempts, self.now, self.now, len(self.jobs)
        )

    @rule(owner=st.sampled_from(OWNERS))
    def claim(self, owner: str) -> None:
        for job in self.jobs.values():
            expired = job.expires is not None and job.expires < self.now
            if job.status == "processing" and expired and job.attempts >= job.max_attempts:
                job.status, job.owner, job.expires = "failed", None, None
        runnable = [
            job
            for job in self.jobs.values()
            if (job.status == "pending" and job.run_after <= self.now)
            or (
                job.status == "processing"
                and job.expires is not None
                and job.expires < self.now
                and job.attempts < job.max_attempts
            )
        ]
        claimed = self.store.claim_job(self.job_type, owner, lease_seconds=LEASE)
        if not runnable:
            assert claimed is None, f"claimed {claimed} with nothing runnable"
            return
        expected = min(runnable, key=lambda j: (j.priority, j.run_after, j.created_at, j.seq))
        assert claimed is not None, f"nothing claimed, {expected.job_id} was runnable"
        assert claimed.job_id == expected.job_id, "claim order: priority, then time"
        expected.status, expected.owner = "processing", owner
        expected.expires = self.now + LEASE
        expected.attempts += 1
        assert claimed.attempts == expected.attempts

    def held(self) -> list[ModelJob]:
        return [j for j in self.jobs.values() if j.status == "processing"]

    @precondition(lambda self: bool(self.jobs))
    @rule(data=st.data(), owner=st.sampled_from(OWNERS))
    def heartbeat(self, data: st.DataObject, owner: str) -> None:
        job = data.draw(st.sampled_from(sorted(self.jobs.values(), key=lambda j: j.seq)))
        ours = job.status == "processing" and job.owner == owner
        assert self.store.heartbeat(job.job_id, owner, LEASE) is ours
        if ours:
            job.expires = self.now + LEASE

    @precondition(lambda self: bool(self.jobs))
    @rule(data=st.data(), owner=st.sampled_from(OWNERS))
    def complete(self, data: st.DataObject, owner: str) -> None:
        job = data.draw(st.sampled_from(sorted(self.jobs.values(), key=lambda j: j.seq)))
        ours = job.status == "processing" and job.owner == owner
        assert self.store.complete_job(job.job_id, owner, {"by": owner}) is ours
        if ours:
            job.status, job.owner, job.expires = "completed", None, None

    @precondition(lambda self: bool(self.jobs))
    @rule(
        data=st.data(),
        owner=st.sampled_from(OWNERS),
        delay=st.sampled_from([None, 0.0, 0.5]),
    )
    def fail(self, data: st.DataObject, owner: str, delay: float | None) -> None:
        job = data.draw(st.sampled_from(sorted(self.jobs.values(), key=lambda j: j.seq)))
        ours = job.status == "processing" and job.owner == owner
        status = self.store.fail_job(job.job_id, owner, "boom", retry_delay=delay)
        if not ours:
            assert status is None
            return
        final = delay is None or job.attempts >= job.max_attempts
        job.status = "failed" if final else "pending"
        job.owner, job.expires = None, None
        job.run_after = self.now + (delay or 0.0)
        assert status == job.status

    @rule(seconds=st.sampled_from([0.1, 0.4, 2.0]))
    def time_passes(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @invariant()
    def store_agrees(self) -> None:
        stored = {j.job_id: j for j in self.store.list_jobs(job_type=self.job_type, limit=1000)}
        assert set(stored) == set(self.jobs)
        for job_id, model in self.jobs.items():
            real = stored[job_id]
            assert (real.status, real.attempts, real.lease_owner) == (
                model.status,
                model.attempts,
                model.owner,
            ), job_id
            assert real.attempts <= real.max_attempts
            if real.status != "processing":
                assert real.lease_owner is None


@pytest.fixture(params=["sqlite", "postgres"])
def store_and_clock(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[Store, VirtualClock]]:
    clock = VirtualClock()
    if request.param == "sqlite":
        from statemachine_engine.database.sqlite import SQLiteStore

        sqlite = SQLiteStore(str(tmp_path / "model.db"), clock=clock)
        yield sqlite, clock
        sqlite.close()
        return
    from statemachine_engine.database.postgres import PostgresStore
    from statemachine_engine.database.postgres import testing as pg_testing

    schema = "q_" + hashlib.md5(str(tmp_path).encode(), usedforsecurity=False).hexdigest()[:20]
    url = pg_testing.with_schema(pg_testing.check_server(), schema)
    postgres = PostgresStore(url, clock=clock)
    yield postgres, clock
    postgres.close()
    pg_testing.drop_schema(url)


@pytest.mark.timeout(120)
def test_the_store_behaves_like_the_model(store_and_clock: tuple[Store, VirtualClock]) -> None:
    store, clock = store_and_clock

    class Bound(QueueModel):
        pass

    Bound.store, Bound.clock = store, clock
    run_state_machine_as_test(
        Bound,
        settings=settings(
            max_examples=60,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
