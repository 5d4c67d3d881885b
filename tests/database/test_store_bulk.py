"""Store contract, both backends: `add_jobs` (one transaction, all or nothing, in order) and
`last_realtime_id`."""

from __future__ import annotations

import pytest

from statemachine_engine.clock import VirtualClock
from statemachine_engine.database import NewJob
from statemachine_engine.database.store import Store
from statemachine_engine.errors import DuplicateJobError, StoreError
from statemachine_engine.names import InvalidNameError


def test_add_jobs_adds_every_job_in_order_in_one_go(store: Store, clock: VirtualClock) -> None:
    ids = store.add_jobs(
        [
            NewJob("t", {"n": 1}, job_id="a"),
            NewJob("t", [1, "x"], job_id="b", priority=1, max_attempts=5),
            NewJob("u", None, machine_type="m", run_after=clock.now() + 60),
        ]
    )
    assert ids[:2] == ["a", "b"] and len(ids) == 3 and ids[2] not in ("a", "b")
    a, b, c = (store.get_job(i) for i in ids)
    assert a is not None and a.data == {"n": 1} and a.status == "pending" and a.priority == 5
    assert b is not None and b.data == [1, "x"] and b.priority == 1 and b.max_attempts == 5
    assert c is not None and c.job_type == "u" and c.machine_type == "m"
    assert c.run_after == pytest.approx(clock.now() + 60)
    assert store.count_jobs()["pending"] == 3
    # claim order is the order given (same priority, same time)
    store.add_jobs(NewJob("v", job_id=f"v{n}") for n in range(5))
    claimed = [store.claim_job("v", "w") for _ in range(5)]
    assert [j.job_id for j in claimed if j] == [f"v{n}" for n in range(5)]


def test_add_jobs_with_an_existing_id_adds_nothing(store: Store) -> None:
    store.add_job("t", job_id="old")
    with pytest.raises(DuplicateJobError, match="old"):
        store.add_jobs([NewJob("t", job_id="new1"), NewJob("t", job_id="old")])
    assert store.get_job("new1") is None
    with pytest.raises(DuplicateJobError, match="twice"):
        store.add_jobs([NewJob("t", job_id="twice"), NewJob("t", job_id="twice")])
    assert store.get_job("twice") is None


def test_add_jobs_if_absent_skips_existing_and_repeated_ids(store: Store) -> None:
    store.add_job("t", {"v": "first"}, job_id="old")
    ids = store.add_jobs(
        [
            NewJob("t", {"v": 1}, job_id="x"),
            NewJob("t", {"v": "second"}, job_id="old"),
            NewJob("t", {"v": 2}, job_id="x"),
            NewJob("t", job_id="y"),
        ],
        if_absent=True,
    )
    assert ids == ["x", "y"]
    x, old = store.get_job("x"), store.get_job("old")
    assert x is not None and x.data == {"v": 1}
    assert old is not None and old.data == {"v": "first"}


def test_add_jobs_checks_every_job_before_writing(store: Store) -> None:
    with pytest.raises(StoreError, match="max_attempts"):
        store.add_jobs([NewJob("t", job_id="ok"), NewJob("t", max_attempts=0)])
    with pytest.raises(InvalidNameError, match="job id"):
        store.add_jobs([NewJob("t", job_id="ok"), NewJob("t", job_id="has space")])
    with pytest.raises(StoreError, match="not JSON"):
        store.add_jobs([NewJob("t", job_id="ok"), NewJob("t", {1, 2})])
    assert store.get_job("ok") is None
    assert store.add_jobs([]) == []
    assert store.count_jobs()["pending"] == 0


def test_add_jobs_writes_one_realtime_row_per_job(store: Store) -> None:
    before = store.last_realtime_id()
    store.add_jobs(NewJob("t", job_id=f"j{n}") for n in range(3))
    rows = store.realtime_since(before)
    assert [(r.kind, r.payload) for r in rows] == [
        ("job", {"job_id": f"j{n}", "job_type": "t", "status": "pending"}) for n in range(3)
    ]
    assert store.last_realtime_id() == rows[-1].id


def test_last_realtime_id_of_an_empty_stream_is_zero(store: Store) -> None:
    assert store.last_realtime_id() == 0
    store.add_realtime(None, "note", {"a": 1})
    (row,) = store.realtime_since(0)
    assert store.last_realtime_id() == row.id
