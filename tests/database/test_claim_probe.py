"""Store contract, both backends: a bare claim (an idle worker's re-check: no steps, nothing
to give back) reads first and writes only when there is something to take."""

from __future__ import annotations

import time
from pathlib import Path

import apsw
import pytest

from statemachine_engine.clock import VirtualClock
from statemachine_engine.database.records import Claim
from statemachine_engine.database.sqlite import SQLiteStore
from statemachine_engine.database.store import Store
from statemachine_engine.errors import StopTimeout


def test_a_bare_claim_on_an_idle_queue_writes_nothing(store: Store, clock: VirtualClock) -> None:
    store.add_job("later", job_id="later", run_after=clock.now() + 60)
    store.add_job("other", job_id="other")
    before = store.last_realtime_id()
    idle = [Claim("t", "w", 30), Claim("later", "w", 30), Claim("other", "w", 30, job_id="x")]
    for claim in idle:
        committed = store.commit_steps([], claim)
        assert committed.jobs == () and committed.acked == ()
    assert store.last_realtime_id() == before  # no claim row, no write at all
    assert store.commit_steps([], Claim("other", "w", 30)).jobs[0].job_id == "other"


def test_a_bare_claim_still_fails_a_lapsed_last_attempt(store: Store, clock: VirtualClock) -> None:
    store.add_job("t", job_id="doomed", max_attempts=1)
    assert store.claim_job("t", "gone@h:1", lease_seconds=5) is not None
    clock.advance(10)
    assert store.commit_steps([], Claim("t", "w", 30)).jobs == ()
    job = store.get_job("doomed")
    assert job is not None and job.status == "failed"
    assert job.error_message == "lease of gone@h:1 expired on attempt 1"


def test_an_idle_re_check_does_not_wait_for_the_write_lock(tmp_path: Path) -> None:
    """SQLite: while another process holds the write lock, an idle worker's re-check reads
    and returns; it would otherwise queue for the lock (here: give up at once)."""
    store = SQLiteStore(str(tmp_path / "sm.db"))
    holder = apsw.Connection(str(tmp_path / "sm.db"))
    try:
        holder.execute("BEGIN IMMEDIATE")
        store.give_up_waiting(time.monotonic())  # any wait for the lock fails at once
        assert store.commit_steps([], Claim("t", "w", 30)).jobs == ()
        with pytest.raises(StopTimeout):
            store.add_job("t")  # a write does wait for the lock
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        store.close()
