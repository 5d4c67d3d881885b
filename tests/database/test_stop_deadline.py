"""`Store.give_up_waiting` on SQLite: a call waiting for a lock held by another connection
gives up at the deadline with StopTimeout, and waits normally again once it is cleared."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import apsw
import pytest

from statemachine_engine.database.sqlite import SQLiteStore
from statemachine_engine.errors import StopTimeout


def test_a_locked_write_gives_up_at_the_deadline_then_waits_again(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "sm.db"))
    locker = apsw.Connection(str(tmp_path / "sm.db"))
    locker.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        store.give_up_waiting(started + 0.2)
        with pytest.raises(StopTimeout, match="is locked by another process"):
            store.add_job("task", job_id="j1")
        assert 0.15 < time.monotonic() - started < 10

        # Past the deadline a locked write fails at once ...
        started = time.monotonic()
        with pytest.raises(StopTimeout):
            store.add_job("task", job_id="j1")
        assert time.monotonic() - started < 5

        # ... and cleared, it waits for the lock as before.
        store.give_up_waiting(None)
        release = threading.Timer(0.3, lambda: locker.execute("ROLLBACK"))
        release.start()
        store.add_job("task", job_id="j1")
        release.join()
    finally:
        if locker.in_transaction:
            locker.execute("ROLLBACK")
        locker.close()
        store.close()


def test_a_deadline_does_not_disturb_a_free_database(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "sm.db"))
    try:
        store.give_up_waiting(time.monotonic() - 1)  # passed already
        store.add_job("task", job_id="j1")
        assert store.get_job("j1") is not None
    finally:
        store.close()
