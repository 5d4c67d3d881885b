"""The Store contract, run against every backend the `store` fixture is parametrised with."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from statemachine_engine.clock import VirtualClock
from statemachine_engine.database.codec import PayloadTooLargeError
from statemachine_engine.database.liveness import process_start, this_host
from statemachine_engine.database.records import (
    JOB_STATUSES,
    Claim,
    Committed,
    JobAck,
    OutgoingEvent,
    Step,
)
from statemachine_engine.database.store import MAX_PAYLOAD_BYTES, Store
from statemachine_engine.errors import (
    DuplicateJobError,
    MachineRunningError,
    NotFoundError,
    StoreError,
)

RawSql = Callable[[Store, str], list[dict[str, Any]]]
OWNER_A = "worker@host:1"
OWNER_B = "worker@host:2"


@pytest.fixture
def live_pid() -> Iterator[int]:
    """The pid of a live process that is not this one."""
    with subprocess.Popen(["sleep", "60"]) as proc:
        yield proc.pid
        proc.kill()


def claim_all(store: Store, owner: str = OWNER_A, **kwargs: Any) -> list[str]:
    """Claim until nothing is runnable; the ids in claim order."""
    claimed = []
    while (job := store.claim_job(None, owner, **kwargs)) is not None:
        claimed.append(job.job_id)
    return claimed


def register(store: Store, name: str, state: str = "idle", *, pid: int = 100) -> None:
    store.register_machine(
        name,
        state,
        pid=pid,
        hostname="host",
        config_path=f"/etc/{name}.yaml",
        definition_name=name,
        definition_hash=f"hash-{name}",
        definition_text=f"name: {name}\n",
        at=1.0,
    )


class TestAddJob:
    def test_generated_id_and_defaults(self, store: Store, clock: VirtualClock) -> None:
        job = store.add_job("render", {"n": 1})
        assert job.job_id
        assert job.status == "pending"
        assert (job.priority, job.attempts, job.max_attempts) == (5, 0, 3)
        assert job.created_at == clock.now()
        assert job.lease_owner is None
        assert job.errors == ()
        assert store.get_job(job.job_id) == job

    def test_generated_ids_are_distinct(self, store: Store) -> None:
        ids = {store.add_job("render").job_id for _ in range(50)}
        assert len(ids) == 50

    def test_explicit_id(self, store: Store) -> None:
        job = store.add_job("render", job_id="J1", machine_type="renderer", priority=2)
        assert (job.job_id, job.machine_type, job.priority) == ("J1", "renderer", 2)

    def test_duplicate_id_is_refused_and_the_first_kept(self, store: Store) -> None:
        store.add_job("render", {"v": "first"}, job_id="J1")
        with pytest.raises(DuplicateJobError) as info:
            store.add_job("render", {"v": "second"}, job_id="J1")
        assert info.value.job_id == "J1"
        assert "J1" in str(info.value)
        job = store.get_job("J1")
        assert job is not None and job.data == {"v": "first"}

    def test_if_absent_returns_the_existing_job_unchanged(self, store: Store) -> None:
        first = store.add_job("render", {"v": "first"}, job_id="J1", priority=3)
        again = store.add_job("other", {"v": "second"}, job_id="J1", priority=1, if_absent=True)
        assert again == first
        assert store.get_job("J1") == first
        assert store.count_jobs()["pending"] == 1

    @pytest.mark.parametrize(
        "data",
        [
            None,
            [],
            {},
            "str",
            "",
            0,
            -1.5,
            True,
            {"a": {"b": [1, {"c": None}, [[]]]}, "d": 2**53},
            "ünïcødé ✓ 漢字 🎉 \u202eRTL\u202c 'quote' \"dq\" $(x) \n\t",
            {"ключ": ["值", "🎉"]},
            "\ud800 lone surrogate",
        ],
        ids=repr,
    )
    def test_data_of_every_json_shape_round_trips(self, store: Store, data: Any) -> None:
        job = store.add_job("render", data, job_id="J1")
        assert job.data == data
        stored = store.get_job("J1")
        assert stored is not None and stored.data == data
        claimed = store.claim_job("render", OWNER_A)
        assert claimed is not None and claimed.data == data

    def test_data_at_the_size_limit_is_accepted(self, store: Store) -> None:
        text = "x" * (MAX_PAYLOAD_BYTES - 2)  # the JSON quotes make it exactly the limit
        assert store.add_job("render", text).data == text

    @pytest.mark.parametrize(
        "data",
        ["x" * (MAX_PAYLOAD_BYTES - 1), {"k": "é" * (MAX_PAYLOAD_BYTES // 2)}],
        ids=["ascii", "multibyte"],
    )
    def test_oversize_data_is_refused(self, store: Store, data: Any) -> None:
        with pytest.raises(PayloadTooLargeError, match="limit"):
            store.add_job("render", data, job_id="big")
        assert store.get_job("big") is None
        assert sum(store.count_jobs().values()) == 0

    @pytest.mark.parametrize(
        "data", [object(), float("nan"), {1j: 1}], ids=["object", "nan", "complex-key"]
    )
    def test_data_that_is_not_json_is_refused(self, store: Store, data: Any) -> None:
        with pytest.raises(StoreError, match="not JSON") as info:
            store.add_job("render", data, job_id="bad")
        assert not isinstance(info.value, PayloadTooLargeError)
        assert store.get_job("bad") is None

    def test_max_attempts_below_one_is_refused(self, store: Store) -> None:
        with pytest.raises(StoreError, match="max_attempts"):
            store.add_job("render", max_attempts=0)


class TestClaim:
    def test_priority_first_then_creation_order(self, store: Store, clock: VirtualClock) -> None:
        for job_id, priority in [("a", 5), ("b", 1), ("c", 5), ("d", 3), ("e", 1)]:
            store.add_job("render", job_id=job_id, priority=priority)
            clock.advance(1)
        assert claim_all(store) == ["b", "e", "d", "a", "c"]

    def test_same_timestamp_keeps_insertion_order(self, store: Store) -> None:
        for job_id in ["z", "m", "a"]:
            store.add_job("render", job_id=job_id)
        assert claim_all(store) == ["z", "m", "a"]

    def test_run_after_orders_within_a_priority(self, store: Store, clock: VirtualClock) -> None:
        start = clock.now()
        store.add_job("render", job_id="late", run_after=start + 20)
        store.add_job("render", job_id="soon", run_after=start + 10)
        clock.advance(15)
        store.add_job("render", job_id="fresh")
        clock.advance(10)
        assert claim_all(store) == ["soon", "fresh", "late"]

    def test_future_run_after_waits_for_the_clock(self, store: Store, clock: VirtualClock) -> None:
        store.add_job("render", job_id="J1", run_after=clock.now() + 60)
        assert store.claim_job("render", OWNER_A) is None
        clock.advance(59.5)
        assert store.claim_job("render", OWNER_A) is None
        clock.advance(0.5)
        job = store.claim_job("render", OWNER_A)
        assert job is not None and job.job_id == "J1"

    def test_claim_takes_a_lease(self, store: Store, clock: VirtualClock) -> None:
        store.add_job("render", job_id="J1")
        job = store.claim_job("render", OWNER_A, lease_seconds=12)
        assert job is not None
        assert job.status == "processing"
        assert job.attempts == 1
        assert job.lease_owner == OWNER_A
        assert job.lease_expires_at == clock.now() + 12
        assert job.started_at == clock.now()
        assert store.claim_job("render", OWNER_B) is None

    def test_job_type_filter(self, store: Store) -> None:
        store.add_job("render", job_id="r")
        store.add_job("describe", job_id="d")
        assert store.claim_job("missing", OWNER_A) is None
        job = store.claim_job("describe", OWNER_A)
        assert job is not None and job.job_id == "d"
        assert store.claim_job("describe", OWNER_A) is None
        job = store.claim_job(None, OWNER_A)
        assert job is not None and job.job_id == "r"

    def test_machine_type_filter(self, store: Store) -> None:
        store.add_job("render", job_id="mine", machine_type="gpu")
        store.add_job("render", job_id="theirs", machine_type="cpu", priority=1)
        store.add_job("render", job_id="anyone", priority=9)
        job = store.claim_job("render", OWNER_A, machine_type="gpu")
        assert job is not None and job.job_id == "mine"
        job = store.claim_job("render", OWNER_A, machine_type="gpu")
        assert job is not None and job.job_id == "anyone"
        assert store.claim_job("render", OWNER_A, machine_type="gpu") is None
        job = store.claim_job("render", OWNER_B)
        assert job is not None and job.job_id == "theirs"

    def test_claim_a_specific_job(self, store: Store, clock: VirtualClock) -> None:
        store.add_job("render", job_id="first", priority=1)
        store.add_job("render", job_id="wanted", priority=9)
        store.add_job("render", job_id="later", run_after=clock.now() + 100)
        job = store.claim_job(None, OWNER_A, job_id="wanted")
        assert job is not None and job.job_id == "wanted"
        assert store.claim_job(None, OWNER_B, job_id="wanted") is None
        assert store.claim_job("describe", OWNER_B, job_id="first") is None
        assert store.claim_job(None, OWNER_B, job_id="later") is None
        assert store.claim_job(None, OWNER_B, job_id="nope") is None
        job = store.claim_job(None, OWNER_B)
        assert job is not None and job.job_id == "first"


class TestLeases:
    def test_expired_lease_is_claimed_again_and_the_old_owner_fenced(
        self, store: Store, clock: VirtualClock
    ) -> None:
        store.add_job("render", job_id="J1")
        assert store.claim_job("render", OWNER_A, lease_seconds=10) is not None
        clock.advance(9)
        assert store.claim_job("render", OWNER_B) is None
        clock.advance(1.5)
        job = store.claim_job("render", OWNER_B, lease_seconds=10)
        assert job is not None
        assert (job.job_id, job.attempts, job.lease_owner) == ("J1", 2, OWNER_B)
        assert job.errors == (f"lease of {OWNER_A} expired on attempt 1",)

        assert store.heartbeat("J1", OWNER_A, 10) is False
        assert store.complete_job("J1", OWNER_A, "late") is False
        assert store.fail_job("J1", OWNER_A, "late", retry_delay=1) is None
        assert store.release_job("J1", OWNER_A) is False
        current = store.get_job("J1")
        assert current is not None
        assert (current.status, current.lease_owner, current.attempts) == (
            "processing",
            OWNER_B,
            2,
        )

        assert store.complete_job("J1", OWNER_B, {"by": "B"}) is True
        done = store.get_job("J1")
        assert done is not None and done.result == {"by": "B"}

    def test_heartbeat_extends_the_lease(self, store: Store, clock: VirtualClock) -> None:
        store.add_job("render", job_id="J1")
        store.claim_job("render", OWNER_A, lease_seconds=10)
        for _ in range(5):
            clock.advance(8)
            assert store.heartbeat("J1", OWNER_A, 10) is True
            assert store.claim_job("render", OWNER_B) is None
        job = store.get_job("J1")
        assert job is not None
        assert job.lease_expires_at == clock.now() + 10
        assert job.attempts == 1
        clock.advance(10.5)
        assert store.claim_job("render", OWNER_B) is not None

    def test_heartbeat_hands_the_lease_over(self, store: Store, clock: VirtualClock) -> None:
        store.add_job("render", job_id="J1")
        store.claim_job(None, OWNER_A, job_id="J1", lease_seconds=10)
        assert store.heartbeat("J1", OWNER_A, 20, to=OWNER_B) is True
        job = store.get_job("J1")
        assert job is not None
        assert (job.lease_owner, job.attempts, job.status) == (OWNER_B, 1, "processing")
        assert job.lease_expires_at == clock.now() + 20
        assert store.heartbeat("J1", OWNER_A, 10) is False, "the old owner lost it"
        assert store.complete_job("J1", OWNER_A) is False
        assert store.complete_job("J1", OWNER_B, "done") is True

    def test_heartbeat_of_unknown_or_unheld_job(self, store: Store) -> None:
        store.add_job("render", job_id="J1")
        assert store.heartbeat("J1", OWNER_A, 10) is False
        assert store.heartbeat("nope", OWNER_A, 10) is False

    def test_exhausted_attempts_and_expired_lease_fail_for_good(
        self, store: Store, clock: VirtualClock
    ) -> None:
        store.add_job("render", job_id="J1", max_attempts=2)
        store.claim_job("render", OWNER_A, lease_seconds=5)
        clock.advance(6)
        job = store.claim_job("render", OWNER_B, lease_seconds=5)
        assert job is not None and job.attempts == 2
        clock.advance(6)
        assert store.claim_job("render", OWNER_A) is None
        failed = store.get_job("J1")
        assert failed is not None
        assert failed.status == "failed"
        assert failed.attempts == 2
        assert failed.lease_owner is None
        assert failed.completed_at == clock.now()
        assert failed.errors == (
            f"lease of {OWNER_A} expired on attempt 1",
            f"lease of {OWNER_B} expired on attempt 2",
        )
        assert failed.error_message == failed.errors[-1]
        assert store.complete_job("J1", OWNER_B) is False
        clock.advance(1000)
        assert store.claim_job(None, OWNER_A) is None


class TestAcknowledge:
    def test_complete(self, store: Store, clock: VirtualClock) -> None:
        store.add_job("render", job_id="J1")
        store.claim_job("render", OWNER_A)
        clock.advance(3)
        assert store.complete_job("J1", OWNER_A, {"out": [1, 2]}) is True
        job = store.get_job("J1")
        assert job is not None
        assert job.status == "completed"
        assert job.result == {"out": [1, 2]}
        assert job.completed_at == clock.now()
        assert (job.lease_owner, job.lease_expires_at) == (None, None)
        assert store.complete_job("J1", OWNER_A) is False
        clock.advance(10_000)
        assert store.claim_job(None, OWNER_A) is None

    def test_complete_with_oversize_result_changes_nothing(self, store: Store) -> None:
        store.add_job("render", job_id="J1")
        store.claim_job("render", OWNER_A)
        with pytest.raises(PayloadTooLargeError):
            store.complete_job("J1", OWNER_A, "x" * MAX_PAYLOAD_BYTES)
        job = store.get_job("J1")
        assert job is not None and (job.status, job.lease_owner) == ("processing", OWNER_A)

    def test_fail_with_retry_delay_goes_back_to_pending(
        self, store: Store, clock: VirtualClock
    ) -> None:
        store.add_job("render", job_id="J1")
        store.claim_job("render", OWNER_A)
        assert store.fail_job("J1", OWNER_A, "boom", retry_delay=30) == "pending"
        job = store.get_job("J1")
        assert job is not None
        assert job.status == "pending"
        assert job.run_after == clock.now() + 30
        assert job.errors == ("boom",)
        assert job.error_message == "boom"
        assert (job.lease_owner, job.completed_at) == (None, None)
        assert store.claim_job("render", OWNER_A) is None
        clock.advance(30)
        again = store.claim_job("render", OWNER_B)
        assert again is not None and again.attempts == 2

    def test_fail_at_max_attempts_is_final_and_keeps_every_error(
        self, store: Store, clock: VirtualClock
    ) -> None:
        store.add_job("render", job_id="J1", max_attempts=3)
        for n in range(1, 4):
            job = store.claim_job("render", OWNER_A)
            assert job is not None and job.attempts == n
            expected = "failed" if n == 3 else "pending"
            assert store.fail_job("J1", OWNER_A, f"error {n}", retry_delay=0.5) == expected
            clock.advance(0.5)
        job = store.get_job("J1")
        assert job is not None
        assert job.status == "failed"
        assert job.errors == ("error 1", "error 2", "error 3")
        assert job.error_message == "error 3"
        assert job.completed_at is not None
        clock.advance(1000)
        assert store.claim_job(None, OWNER_A) is None

    def test_fail_without_retry_delay_is_final(self, store: Store) -> None:
        store.add_job("render", job_id="J1", max_attempts=5)
        store.claim_job("render", OWNER_A)
        assert store.fail_job("J1", OWNER_A, "fatal") == "failed"
        job = store.get_job("J1")
        assert job is not None and (job.status, job.attempts, job.errors) == (
            "failed",
            1,
            ("fatal",),
        )

    def test_fail_of_an_unheld_job_is_fenced(self, store: Store) -> None:
        store.add_job("render", job_id="J1")
        assert store.fail_job("J1", OWNER_A, "x") is None
        assert store.fail_job("nope", OWNER_A, "x") is None

    def test_release_does_not_count_the_attempt(self, store: Store) -> None:
        store.add_job("render", job_id="J1", max_attempts=1)
        for _ in range(3):
            job = store.claim_job("render", OWNER_A)
            assert job is not None and job.attempts == 1
            assert store.release_job("J1", OWNER_B) is False
            assert store.release_job("J1", OWNER_A) is True
            released = store.get_job("J1")
            assert released is not None
            assert (released.status, released.attempts, released.lease_owner) == (
                "pending",
                0,
                None,
            )
        assert store.release_job("J1", OWNER_A) is False

    def test_release_jobs_by_owner_prefix(self, store: Store) -> None:
        owners = ["render@host:1", "render@host:2", "render@other:1", "describe@host:1"]
        for n, owner in enumerate(owners):
            store.add_job("render", job_id=f"J{n}")
            job = store.claim_job("render", owner)
            assert job is not None and job.job_id == f"J{n}"
        store.add_job("render", job_id="idle")
        assert store.release_jobs("render@host:") == 2
        for job_id, status in [("J0", "pending"), ("J1", "pending"), ("J2", "processing")]:
            job = store.get_job(job_id)
            assert job is not None and job.status == status
        released = store.get_job("J0")
        assert released is not None and (released.attempts, released.lease_owner) == (0, None)
        assert store.release_jobs("nobody@") == 0


class TestOperatorActions:
    def test_retry_a_failed_job(self, store: Store, clock: VirtualClock) -> None:
        store.add_job("render", job_id="J1", max_attempts=1)
        store.claim_job("render", OWNER_A)
        store.fail_job("J1", OWNER_A, "boom")
        clock.advance(5)
        job = store.retry_job("J1")
        assert (job.status, job.attempts, job.lease_owner, job.completed_at) == (
            "pending",
            0,
            None,
            None,
        )
        assert job.errors == ("boom",)
        claimed = store.claim_job("render", OWNER_A)
        assert claimed is not None and claimed.attempts == 1

    def test_retry_a_cancelled_job(self, store: Store) -> None:
        store.add_job("render", job_id="J1")
        store.cancel_job("J1")
        assert store.retry_job("J1").status == "pending"

    @pytest.mark.parametrize("status", ["pending", "processing", "completed"])
    def test_retry_refuses_other_states(self, store: Store, status: str) -> None:
        store.add_job("render", job_id="J1")
        if status != "pending":
            store.claim_job("render", OWNER_A)
        if status == "completed":
            store.complete_job("J1", OWNER_A)
        with pytest.raises(StoreError, match=f"is {status}") as info:
            store.retry_job("J1")
        assert not isinstance(info.value, NotFoundError)
        job = store.get_job("J1")
        assert job is not None and job.status == status

    def test_retry_unknown_job(self, store: Store) -> None:
        with pytest.raises(NotFoundError, match="nope"):
            store.retry_job("nope")

    def test_cancel_a_pending_job(self, store: Store, clock: VirtualClock) -> None:
        store.add_job("render", job_id="J1")
        job = store.cancel_job("J1")
        assert (job.status, job.completed_at) == ("cancelled", clock.now())
        assert store.claim_job(None, OWNER_A) is None

    @pytest.mark.parametrize("status", ["processing", "completed", "cancelled"])
    def test_cancel_refuses_other_states(self, store: Store, status: str) -> None:
        store.add_job("render", job_id="J1")
        if status == "cancelled":
            store.cancel_job("J1")
        else:
            store.claim_job("render", OWNER_A)
        if status == "completed":
            store.complete_job("J1", OWNER_A)
        with pytest.raises(StoreError, match=f"is {status}") as info:
            store.cancel_job("J1")
        assert not isinstance(info.value, NotFoundError)

    def test_cancel_unknown_job(self, store: Store) -> None:
        with pytest.raises(NotFoundError, match="nope"):
            store.cancel_job("nope")


class TestInspectJobs:
    def test_count_jobs(self, store: Store) -> None:
        assert store.count_jobs() == dict.fromkeys(JOB_STATUSES, 0)
        for n in range(4):
            store.add_job("render", job_id=f"r{n}")
        store.add_job("describe", job_id="d0")
        store.claim_job("render", OWNER_A)
        store.claim_job("render", OWNER_A)
        store.complete_job("r1", OWNER_A)
        store.cancel_job("r3")
        assert store.count_jobs() == {
            "pending": 2,
            "processing": 1,
            "completed": 1,
            "failed": 0,
            "cancelled": 1,
        }
        assert store.count_jobs(job_type="describe") == {
            **dict.fromkeys(JOB_STATUSES, 0),
            "pending": 1,
        }

    def test_list_jobs_filters_and_pages(self, store: Store, clock: VirtualClock) -> None:
        for n in range(7):
            store.add_job("render" if n % 2 == 0 else "describe", job_id=f"J{n}")
            clock.advance(1)
        store.claim_job(None, OWNER_A, job_id="J2")
        assert [j.job_id for j in store.list_jobs()] == [f"J{n}" for n in range(6, -1, -1)]
        assert [j.job_id for j in store.list_jobs(job_type="describe")] == ["J5", "J3", "J1"]
        assert [j.job_id for j in store.list_jobs(status="processing")] == ["J2"]
        assert [j.job_id for j in store.list_jobs(status="pending", job_type="render")] == [
            "J6",
            "J4",
            "J0",
        ]
        pages = [store.list_jobs(limit=3, offset=offset) for offset in (0, 3, 6, 9)]
        assert [len(p) for p in pages] == [3, 3, 1, 0]
        paged = [j.job_id for page in pages for j in page]
        assert paged == [j.job_id for j in store.list_jobs()]

    def test_list_jobs_pages_stably_on_equal_timestamps(self, store: Store) -> None:
        for n in range(10):
            store.add_job("render", job_id=f"J{n}")
        paged = [
            j.job_id for offset in range(0, 10, 4) for j in store.list_jobs(limit=4, offset=offset)
        ]
        assert sorted(paged) == [f"J{n}" for n in range(10)]
        assert paged == [f"J{n}" for n in range(9, -1, -1)]

    def test_get_unknown_job(self, store: Store) -> None:
        assert store.get_job("nope") is None


class TestEvents:
    def test_events_are_delivered_in_order_per_target(self, store: Store) -> None:
        sent = []
        for n in range(3):
            sent.append(store.send_event("a", f"e{n}", {"n": n}, source="src", job_id=f"J{n}"))
            store.send_event("b", f"other{n}")
        for n in range(3):
            event = store.next_event("a")
            assert event is not None
            assert store.next_event("a") == event
            assert event == sent[n]
            assert (event.event_type, event.payload, event.source_machine, event.job_id) == (
                f"e{n}",
                {"n": n},
                "src",
                f"J{n}",
            )
            assert store.mark_event(event.id, "processed") is True
        assert store.next_event("a") is None
        b = store.next_event("b")
        assert b is not None and b.event_type == "other0"
        assert store.next_event("nobody") is None

    def test_send_event_record(self, store: Store, clock: VirtualClock) -> None:
        event = store.send_event("a", "go")
        assert (event.status, event.payload, event.created_at) == ("pending", None, clock.now())
        assert event.processed_at is None

    def test_mark_event_only_once(self, store: Store, clock: VirtualClock) -> None:
        event = store.send_event("a", "go")
        clock.advance(2)
        assert store.mark_event(event.id, "unhandled") is True
        assert store.mark_event(event.id, "processed") is False
        assert store.mark_event(event.id + 1000, "processed") is False
        [stored] = store.list_events(target="a")
        assert (stored.status, stored.processed_at) == ("unhandled", clock.now())

    def test_clear_events(self, store: Store) -> None:
        for n in range(3):
            store.send_event("a", f"e{n}")
        store.send_event("b", "keep")
        first = store.next_event("a")
        assert first is not None
        store.mark_event(first.id, "processed")
        assert store.clear_events("a") == 2
        assert store.next_event("a") is None
        assert store.clear_events("a") == 0
        assert store.next_event("b") is not None

    def test_list_events_filters(self, store: Store) -> None:
        ids = [store.send_event("a" if n < 4 else "b", f"e{n}").id for n in range(6)]
        store.mark_event(ids[0], "processed")
        assert [e.id for e in store.list_events()] == ids[::-1]
        assert [e.id for e in store.list_events(target="a")] == ids[3::-1]
        assert [e.id for e in store.list_events(target="a", status="pending")] == ids[3:0:-1]
        assert [e.id for e in store.list_events(status="processed")] == [ids[0]]
        assert [e.id for e in store.list_events(limit=2)] == [ids[5], ids[4]]

    def test_oversize_payload_is_refused(self, store: Store) -> None:
        with pytest.raises(PayloadTooLargeError):
            store.send_event("a", "big", "x" * MAX_PAYLOAD_BYTES)
        assert store.list_events() == []


class TestSendEvents:
    def test_several_events_in_one_transaction_in_order(self, store: Store) -> None:
        sent = store.send_events(
            [OutgoingEvent(f"m{n}", "ping", {"n": n}, job_id="J1") for n in range(3)],
            source="fanout",
        )
        assert [e.target_machine for e in sent] == ["m0", "m1", "m2"]
        assert sent[0].id < sent[1].id < sent[2].id
        for n, event in enumerate(sent):
            assert store.next_event(f"m{n}") == event
            assert (event.payload, event.source_machine, event.job_id) == ({"n": n}, "fanout", "J1")

    def test_one_bad_payload_stores_none_of_them(self, store: Store) -> None:
        events = [OutgoingEvent("a", "ok"), OutgoingEvent("b", "huge", "x" * MAX_PAYLOAD_BYTES)]
        with pytest.raises(PayloadTooLargeError):
            store.send_events(events)
        assert store.list_events() == []


class TestMachines:
    def test_register_machine(self, store: Store) -> None:
        store.register_machine(
            "worker",
            "idle",
            pid=42,
            hostname="host",
            config_path="/etc/worker.yaml",
            definition_name="worker",
            definition_hash="abc",
            definition_text="name: worker\n",
            at=10.0,
        )
        status = store.get_machine("worker")
        assert status is not None
        assert (status.current_state, status.status, status.pid, status.hostname) == (
            "idle",
            "running",
            42,
            "host",
        )
        assert (status.definition_hash, status.started_at, status.state_entered_at) == (
            "abc",
            10.0,
            10.0,
        )
        definition = store.get_definition("abc")
        assert definition is not None
        assert (definition["name"], definition["text"]) == ("worker", "name: worker\n")
        assert store.get_definition("missing") is None

    def test_register_twice_updates_the_row(self, store: Store) -> None:
        register(store, "worker", "idle", pid=1)
        store.commit_step(
            Step("worker", at=2.0, step=7, from_state="idle", to_state="busy", event="go")
        )
        store.machine_stopped("worker", "stopped", at=3.0)
        store.register_machine(
            "worker",
            "idle",
            pid=2,
            hostname="host2",
            config_path="/etc/worker.yaml",
            definition_name="worker",
            definition_hash="hash-v2",
            definition_text="name: worker\nv: 2\n",
            at=4.0,
        )
        [status] = store.list_machines()
        assert (status.pid, status.hostname, status.status, status.current_state) == (
            2,
            "host2",
            "running",
            "idle",
        )
        assert (status.previous_state, status.last_event, status.started_at) == (None, None, 4.0)
        assert status.definition_hash == "hash-v2"
        assert status.step == 7  # step numbers keep growing across restarts (idempotency keys)
        assert store.get_definition("hash-worker") is not None
        assert store.get_definition("hash-v2") is not None

    def test_machine_stopped(self, store: Store) -> None:
        register(store, "worker")
        store.machine_stopped("worker", "stopped", at=5.0)
        status = store.get_machine("worker")
        assert status is not None and (status.status, status.updated_at) == ("stopped", 5.0)
        store.machine_stopped("ghost", "stopped", at=5.0)
        assert store.get_machine("ghost") is None

    def test_a_name_runs_once_while_its_process_lives_on_this_host(
        self, store: Store, live_pid: int
    ) -> None:
        here = this_host()
        start = process_start(live_pid)
        kwargs: dict[str, Any] = {
            "config_path": "w.yaml",
            "definition_name": "w",
            "definition_hash": "h",
            "definition_text": "name: w\n",
        }
        store.register_machine(
            "w", "idle", pid=live_pid, hostname=here, pid_start=start, at=1.0, **kwargs
        )
        with pytest.raises(
            MachineRunningError,
            match=rf"'w' is already running .*pid {live_pid} on host {re.escape(here)}",
        ):
            store.register_machine("w", "idle", pid=live_pid + 1, hostname=here, at=2.0, **kwargs)
        store.machine_stopped("w", "crashed", at=3.0)  # the refused starter's clean-up: a no-op
        status = store.get_machine("w")
        assert status is not None and (status.status, status.pid, status.pid_start) == (
            "running",
            live_pid,
            start,
        )
        # The same pid with another start time is a reused pid: the old process is gone.
        assert start is not None
        store.register_machine(
            "w", "idle", pid=live_pid, hostname=here, pid_start=start + 1, at=4.0, **kwargs
        )
        store.register_machine("w", "idle", pid=live_pid + 1, hostname=here, at=5.0, **kwargs)
        status = store.get_machine("w")
        assert status is not None and (status.pid, status.pid_start, status.started_at) == (
            live_pid + 1,
            None,
            5.0,
        )

    def test_a_name_recorded_running_on_another_host_is_refused_until_marked_stopped(
        self, store: Store, open_store: Callable[..., Store]
    ) -> None:
        kwargs: dict[str, Any] = {
            "config_path": "w.yaml",
            "definition_name": "w",
            "definition_hash": "h",
            "definition_text": "name: w\n",
        }
        store.register_machine("w", "idle", pid=7, hostname="elsewhere.example", at=1.0, **kwargs)
        with pytest.raises(
            MachineRunningError, match=r"on host elsewhere\.example \(pid 7\).*mark-stopped w"
        ):
            store.register_machine("w", "idle", pid=8, hostname=this_host(), at=2.0, **kwargs)
        open_store().machine_stopped("w", "stopped", at=3.0)  # what mark-stopped does
        store.register_machine("w", "idle", pid=8, hostname=this_host(), at=4.0, **kwargs)

    def test_list_machines_by_name(self, store: Store) -> None:
        for name in ["zeta", "alpha", "mid"]:
            register(store, name)
        assert [m.machine_name for m in store.list_machines()] == ["alpha", "mid", "zeta"]
        assert store.get_machine("nope") is None


class TestCommitStep:
    def test_commits_everything_together(self, store: Store, clock: VirtualClock) -> None:
        register(store, "worker")
        event = store.send_event("worker", "go", {"k": 1})
        store.add_job("render", job_id="J1")
        store.claim_job("render", "worker@host:1")
        before = store.realtime_since()[-1].id
        step = Step(
            "worker",
            at=clock.now(),
            step=1,
            from_state="idle",
            to_state="done",
            event="go",
            consumed_event_id=event.id,
            job_id="J1",
            job_ack=JobAck("J1", "worker@host:1", "completed", result={"ok": True}),
            outbox=[OutgoingEvent("describer", "describe", {"image": "x.png"}, job_id="J1")],
            realtime=[("activity", {"message": "done"})],
        )
        assert store.commit_step(step) is True

        status = store.get_machine("worker")
        assert status is not None
        assert (status.current_state, status.previous_state, status.last_event, status.step) == (
            "done",
            "idle",
            "go",
            1,
        )
        # the step acknowledged J1, so the machine no longer holds a job
        assert (status.current_job_id, status.state_entered_at) == (None, clock.now())
        [record] = store.history(machine="worker")
        assert (record.from_state, record.to_state, record.event, record.event_id) == (
            "idle",
            "done",
            "go",
            event.id,
        )
        assert record.job_id == "J1"
        assert store.next_event("worker") is None
        job = store.get_job("J1")
        assert job is not None and (job.status, job.result) == ("completed", {"ok": True})
        sent = store.next_event("describer")
        assert sent is not None
        assert (sent.event_type, sent.payload, sent.source_machine, sent.job_id) == (
            "describe",
            {"image": "x.png"},
            "worker",
            "J1",
        )
        kinds = [r.kind for r in store.realtime_since(before)]
        assert "state_change" in kinds and "activity" in kinds and "event_sent" in kinds

    def test_fenced_ack_keeps_the_step_but_not_the_outbox(
        self, store: Store, clock: VirtualClock
    ) -> None:
        register(store, "worker")
        event = store.send_event("worker", "job_done")
        store.add_job("render", job_id="J1")
        store.claim_job("render", OWNER_A, lease_seconds=5)
        clock.advance(6)
        store.claim_job("render", OWNER_B, lease_seconds=5)
        step = Step(
            "worker",
            at=clock.now(),
            step=1,
            from_state="processing",
            to_state="idle",
            event="job_done",
            consumed_event_id=event.id,
            job_id="J1",
            job_ack=JobAck("J1", OWNER_A, "completed", result="late"),
            outbox=[OutgoingEvent("downstream", "next")],
        )
        assert store.commit_step(step) is False
        status = store.get_machine("worker")
        assert status is not None and status.current_state == "idle"
        assert len(store.history(machine="worker")) == 1
        assert store.next_event("worker") is None
        assert store.list_events(target="downstream") == []
        job = store.get_job("J1")
        assert job is not None and (job.status, job.lease_owner) == ("processing", OWNER_B)

    def test_failed_ack_schedules_a_retry(self, store: Store, clock: VirtualClock) -> None:
        register(store, "worker")
        store.add_job("render", job_id="J1")
        store.claim_job("render", OWNER_A)
        step = Step(
            "worker",
            at=clock.now(),
            step=1,
            from_state="processing",
            to_state="idle",
            event="error",
            job_ack=JobAck("J1", OWNER_A, "failed", error="exit 1", retry_delay=4),
        )
        assert store.commit_step(step) is True
        job = store.get_job("J1")
        assert job is not None
        assert (job.status, job.errors, job.run_after) == ("pending", ("exit 1",), clock.now() + 4)

    def test_all_or_nothing(self, store: Store, clock: VirtualClock) -> None:
        register(store, "worker")
        event = store.send_event("worker", "go")
        store.add_job("render", job_id="J1")
        store.claim_job("render", OWNER_A)
        realtime_before = store.realtime_since()
        step = Step(
            "worker",
            at=clock.now(),
            step=1,
            from_state="idle",
            to_state="done",
            event="go",
            consumed_event_id=event.id,
            job_ack=JobAck("J1", OWNER_A, "completed"),
            outbox=[
                OutgoingEvent("downstream", "small"),
                OutgoingEvent("downstream", "huge", "x" * MAX_PAYLOAD_BYTES),
            ],
        )
        with pytest.raises(PayloadTooLargeError):
            store.commit_step(step)
        status = store.get_machine("worker")
        assert status is not None and (status.current_state, status.step) == ("idle", 0)
        assert store.history() == []
        assert store.next_event("worker") == event
        job = store.get_job("J1")
        assert job is not None and (job.status, job.lease_owner) == ("processing", OWNER_A)
        assert store.list_events(target="downstream") == []
        assert store.realtime_since() == realtime_before

    def test_step_without_a_state_change_still_consumes_the_event(
        self, store: Store, clock: VirtualClock
    ) -> None:
        register(store, "worker")
        event = store.send_event("worker", "unknown")
        step = Step(
            "worker",
            at=clock.now(),
            step=1,
            from_state="idle",
            to_state=None,
            event="unknown",
            consumed_event_id=event.id,
            consumed_event_status="unhandled",
        )
        assert store.commit_step(step) is True
        assert store.history() == []
        [stored] = store.list_events(target="worker")
        assert stored.status == "unhandled"
        status = store.get_machine("worker")
        assert status is not None and status.current_state == "idle"

    def test_history_newest_first(self, store: Store) -> None:
        register(store, "a")
        register(store, "b")
        for n in range(1, 4):
            for name in ("a", "b"):
                store.commit_step(
                    Step(
                        name,
                        at=float(n),
                        step=n,
                        from_state=f"s{n - 1}",
                        to_state=f"s{n}",
                        event="e",
                    )
                )
        assert [r.step for r in store.history(machine="a")] == [3, 2, 1]
        assert [r.machine_name for r in store.history(limit=2)] == ["b", "a"]
        assert len(store.history()) == 6


class TestGroupCommit:
    def test_steps_then_the_claim_in_one_transaction(
        self, store: Store, clock: VirtualClock
    ) -> None:
        register(store, "worker", "waiting")
        store.add_job("render", job_id="J1")
        store.add_job("render", job_id="J2")
        assert store.claim_job("render", OWNER_A) is not None
        steps = [
            Step("worker", clock.now(), 1, "waiting", "processing", "new_job", job_id="J1"),
            Step(
                "worker",
                clock.now(),
                2,
                "processing",
                "waiting",
                "done",
                job_id="J1",
                job_ack=JobAck("J1", OWNER_A, "completed"),
            ),
        ]
        committed = store.commit_steps(steps, Claim("render", OWNER_A, 30.0))
        assert committed.acked == (True, True)
        assert committed.job is not None and committed.job.job_id == "J2"
        assert committed.job.lease_owner == OWNER_A
        assert [r.to_state for r in store.history(machine="worker")] == ["waiting", "processing"]
        done = store.get_job("J1")
        assert done is not None and done.status == "completed"
        status = store.get_machine("worker")
        assert status is not None and (status.current_state, status.step) == ("waiting", 2)

    def test_a_claim_alone_and_an_empty_queue(self, store: Store, clock: VirtualClock) -> None:
        assert store.commit_steps((), Claim(None, OWNER_A, 30.0)) == Committed(())
        store.add_job("render", job_id="J1", machine_type="gpu")
        assert store.commit_steps((), Claim("render", OWNER_A, 30.0, "cpu")).job is None
        job = store.commit_steps((), Claim("render", OWNER_A, 30.0, "gpu")).job
        assert job is not None and job.job_id == "J1"

    def test_fencing_is_per_step(self, store: Store, clock: VirtualClock) -> None:
        register(store, "worker")
        store.add_job("render", job_id="J1")
        store.add_job("render", job_id="J2")
        store.claim_job("render", OWNER_A, lease_seconds=5, job_id="J1")
        clock.advance(6)
        store.claim_job("render", OWNER_B, lease_seconds=5, job_id="J1")
        store.claim_job("render", OWNER_A, job_id="J2")
        late = Step(
            "worker",
            clock.now(),
            1,
            "processing",
            "idle",
            "done",
            job_ack=JobAck("J1", OWNER_A, "completed"),
            outbox=[OutgoingEvent("downstream", "late")],
        )
        fine = Step(
            "worker",
            clock.now(),
            2,
            "idle",
            "idle",
            "done",
            job_ack=JobAck("J2", OWNER_A, "completed"),
            outbox=[OutgoingEvent("downstream", "fine")],
        )
        assert store.commit_steps([late, fine]).acked == (False, True)
        assert [e.event_type for e in store.list_events(target="downstream")] == ["fine"]
        assert len(store.history(machine="worker")) == 2

    def test_one_bad_step_rolls_back_the_group_and_the_claim(
        self, store: Store, clock: VirtualClock
    ) -> None:
        register(store, "worker")
        store.add_job("render", job_id="J1")
        good = Step("worker", clock.now(), 1, "idle", "busy", "go")
        bad = Step(
            "worker",
            clock.now(),
            2,
            "busy",
            "idle",
            "back",
            outbox=[OutgoingEvent("downstream", "huge", "x" * MAX_PAYLOAD_BYTES)],
        )
        with pytest.raises(PayloadTooLargeError):
            store.commit_steps([good, bad], Claim("render", OWNER_A, 30.0))
        assert store.history() == []
        job = store.get_job("J1")
        assert job is not None and job.status == "pending"


class TestRealtime:
    def test_realtime_since_orders_and_pages(self, store: Store, clock: VirtualClock) -> None:
        start = store.realtime_since()
        after = start[-1].id if start else 0
        for n in range(5):
            store.add_realtime("m" if n % 2 else None, "activity", {"n": n})
        rows = store.realtime_since(after)
        assert [r.payload for r in rows] == [{"n": n} for n in range(5)]
        assert [r.machine_name for r in rows] == [None, "m", None, "m", None]
        assert all(r.kind == "activity" and r.created_at == clock.now() for r in rows)
        ids = [r.id for r in rows]
        assert ids == sorted(ids) and len(set(ids)) == 5
        first = store.realtime_since(after, limit=2)
        rest = store.realtime_since(first[-1].id, limit=10)
        assert first + rest == rows
        assert store.realtime_since(ids[-1]) == []

    def test_job_changes_reach_the_stream(self, store: Store) -> None:
        store.add_job("render", job_id="J1")
        store.claim_job("render", OWNER_A)
        store.complete_job("J1", OWNER_A)
        statuses = [r.payload["status"] for r in store.realtime_since() if r.kind == "job"]
        assert statuses == ["pending", "processing", "completed"]


class TestRetention:
    def test_prune_deletes_only_old_finished_history(
        self, store: Store, clock: VirtualClock
    ) -> None:
        register(store, "worker")
        store.add_job("render", job_id="done")
        store.add_job("render", job_id="gone", max_attempts=1)
        store.add_job("render", job_id="cancelled")
        store.cancel_job("cancelled")
        for _ in range(2):
            claimed = store.claim_job("render", OWNER_A)
            assert claimed is not None
            if claimed.job_id == "done":
                store.complete_job("done", OWNER_A)
            else:
                store.fail_job(claimed.job_id, OWNER_A, "boom")
        handled = store.send_event("worker", "go")
        store.mark_event(handled.id, "processed")
        store.send_event("worker", "later")
        store.commit_step(
            Step(
                machine_name="worker",
                at=clock.now(),
                step=1,
                from_state="idle",
                to_state="busy",
                event="go",
            )
        )
        clock.advance(3600)
        store.add_job("render", job_id="pending")
        recent = store.send_event("worker", "recent")
        store.mark_event(recent.id, "processed")

        planned = store.prune(clock.now() - 60, dry_run=True)
        assert store.get_job("done") is not None and store.history(machine="worker") != []
        deleted = store.prune(clock.now() - 60)

        assert planned == deleted
        assert deleted["jobs"] == 2  # completed and cancelled; failed is kept for inspection
        assert store.get_job("done") is None and store.get_job("cancelled") is None
        assert store.get_job("gone") is not None and store.get_job("pending") is not None
        assert deleted["machine_events"] == 1
        assert [e.event_type for e in store.list_events(target="worker")] == ["recent", "later"]
        assert deleted["transitions"] == 1 and store.history(machine="worker") == []
        assert deleted["realtime_events"] > 0
        assert all(r.created_at >= clock.now() - 60 for r in store.realtime_since())
        assert store.prune(clock.now() - 60) == dict.fromkeys(deleted, 0)


class TestMigrations:
    def test_reopening_applies_nothing_twice(self, open_store: Any, raw_sql: RawSql) -> None:
        first = open_store()
        first.add_job("render", job_id="J1")
        applied = raw_sql(first, "SELECT name, applied_at FROM schema_migrations ORDER BY name")
        assert applied and all(row["name"].startswith("engine/") for row in applied)
        first.close()
        second = open_store()
        assert (
            raw_sql(second, "SELECT name, applied_at FROM schema_migrations ORDER BY name")
            == applied
        )
        assert second.get_job("J1") is not None

    def test_domain_schema_dir_is_applied_once(
        self, open_store: Any, raw_sql: RawSql, tmp_path: Path
    ) -> None:
        domain = tmp_path / "domain"
        domain.mkdir()
        (domain / "001_extra.sql").write_text(
            "CREATE TABLE extra (id INTEGER PRIMARY KEY, note TEXT);\n"
            "CREATE INDEX extra_note ON extra (note);\n"
        )
        (domain / "README.md").write_text("not a migration")
        first = open_store(schema_dirs=[domain])
        assert raw_sql(first, "SELECT COUNT(*) AS n FROM extra") == [{"n": 0}]
        names = [r["name"] for r in raw_sql(first, "SELECT name FROM schema_migrations")]
        assert "domain/001_extra.sql" in names
        first.close()

        (domain / "002_more.sql").write_text("ALTER TABLE extra ADD COLUMN more TEXT;\n")
        second = open_store(schema_dirs=[domain])  # 001 again would fail: no IF NOT EXISTS
        rows = raw_sql(second, "SELECT name FROM schema_migrations WHERE name LIKE 'domain/%'")
        assert sorted(r["name"] for r in rows) == ["domain/001_extra.sql", "domain/002_more.sql"]
        assert raw_sql(second, "SELECT id, note, more FROM extra") == []

    def test_broken_domain_migration_is_rolled_back(
        self, open_store: Any, raw_sql: RawSql, tmp_path: Path
    ) -> None:
        domain = tmp_path / "domain"
        domain.mkdir()
        (domain / "001_ok.sql").write_text("CREATE TABLE ok_table (id INTEGER);\n")
        (domain / "002_bad.sql").write_text("CREATE TABLE broken (;\n")
        with pytest.raises(StoreError, match="syntax error"):
            open_store(schema_dirs=[domain])
        store = open_store()
        names = [r["name"] for r in raw_sql(store, "SELECT name FROM schema_migrations")]
        assert not any(name.startswith("domain/") for name in names)
