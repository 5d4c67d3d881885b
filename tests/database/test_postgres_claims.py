"""Claims on PostgreSQL: eight workers, each on its own connection, drain one queue with no
job claimed twice; and a claim never waits for a row another transaction holds (it skips it:
`FOR UPDATE SKIP LOCKED`), checked with that row locked by an open transaction."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from statemachine_engine.database.postgres import PostgresStore
from statemachine_engine.database.postgres import testing as pg
from statemachine_engine.database.postgres.connection import parse_url

JOBS = 1000
WORKERS = 8


@pytest.fixture
def pg_url() -> Iterator[str]:
    url = pg.fresh_schema_url(pg.check_server())
    yield url
    pg.drop_schema(url)


def test_eight_workers_claim_each_job_once_without_lock_waits(pg_url: str) -> None:
    setup = PostgresStore(pg_url)
    try:
        for n in range(JOBS):
            setup.add_job("race", {"n": n}, job_id=f"j{n:04d}", priority=n % 3)
    finally:
        setup.close()

    claimed: list[list[str]] = [[] for _ in range(WORKERS)]
    errors: list[BaseException] = []
    start = threading.Barrier(WORKERS)

    def work(index: int) -> None:
        try:
            claims = PostgresStore(pg_url)
            acks = PostgresStore(pg_url)
        except BaseException as exc:
            errors.append(exc)
            start.abort()
            return
        try:
            start.wait()
            owner = f"w{index}@host:{index}"
            while (job := claims.claim_job("race", owner, lease_seconds=60)) is not None:
                claimed[index].append(job.job_id)
                assert acks.complete_job(job.job_id, owner, {"by": index})
        except BaseException as exc:
            errors.append(exc)
        finally:
            claims.close()
            acks.close()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(WORKERS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    elapsed = time.monotonic() - started
    assert not errors, errors

    counts = Counter(job_id for ids in claimed for job_id in ids)
    assert len(counts) == JOBS
    assert max(counts.values()) == 1
    assert sum(bool(ids) for ids in claimed) >= 2, "the claims were not concurrent"
    check = PostgresStore(pg_url)
    try:
        assert check.count_jobs()["completed"] == JOBS
        assert all(job.attempts == 1 for job in check.list_jobs(limit=JOBS))
    finally:
        check.close()
    print(f"{JOBS} claims by {WORKERS} workers in {elapsed:.2f} s: {sorted(map(len, claimed))}")


@pytest.mark.parametrize("held", ["pending", "expired lease"])
def test_a_claim_skips_a_locked_row_instead_of_waiting(pg_url: str, held: str) -> None:
    store = PostgresStore(pg_url)
    # A lock wait of more than 1 s would fail the claim instead of hanging the test.
    impatient = PostgresStore(pg_url + "&options=-c%20lock_timeout%3D1000ms")
    try:
        store.add_job("race", job_id="first", priority=1)
        store.add_job("race", job_id="second", priority=2)
        if held == "expired lease":
            store.claim_job("race", "gone@host:1", lease_seconds=-1)
        target = parse_url(pg_url)
        with psycopg.connect(target.conninfo) as blocker:
            blocker.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(target.schema)))
            blocker.execute("SELECT * FROM jobs WHERE job_id = 'first' FOR UPDATE")
            started = time.monotonic()
            job = impatient.claim_job("race", "w@host:2")
            waited = time.monotonic() - started
            assert job is not None and job.job_id == "second"
            assert impatient.claim_job("race", "w@host:2") is None
            blocker.rollback()
        assert waited < 0.5
        job = impatient.claim_job("race", "w@host:2")
        assert job is not None and job.job_id == "first"
    finally:
        store.close()
        impatient.close()
