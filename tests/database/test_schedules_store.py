"""The schedule methods of the Store contract, on every backend: storing, pausing, firing
each tick exactly once (also with several stores firing at the same moment) and catch-up."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from statemachine_engine.clock import VirtualClock, iso
from statemachine_engine.database.schedules import ScheduleSpec
from statemachine_engine.database.store import Store
from statemachine_engine.errors import NotFoundError, StoreError, UsageError
from statemachine_engine.ticks import Timing

RawSql = Callable[[Store, str], list[dict[str, Any]]]
START = 1_700_002_800.0  # 2023-11-14 23:00 UTC, a whole hour


@pytest.fixture(autouse=True)
def at_start(clock: VirtualClock) -> None:
    """Every test starts at START, so ticks fall on round offsets from it."""
    clock.advance(START - clock.now())


def every(seconds: int, name: str = "beat", **kwargs: object) -> ScheduleSpec:
    return ScheduleSpec(name, "tick", Timing(every=seconds), **kwargs)  # type: ignore[arg-type]


def tick_jobs(store: Store) -> list[tuple[str, int]]:
    """(job id, tick) of every job a schedule enqueued, by tick."""
    jobs = [j for j in store.list_jobs(limit=100_000) if j.job_id.startswith("sched:")]
    return sorted(((j.job_id, j.data["tick"]) for j in jobs), key=lambda item: item[1])


class TestStoring:
    def test_add_get_list(self, store: Store, clock: VirtualClock) -> None:
        spec = every(30, payload={"size": 3}, machine_type="worker", catch_up="all")
        added = store.add_schedule(spec)
        assert added.spec == spec
        assert added.next_due == START + 30  # the first multiple of 30 s after now
        assert (added.paused, added.last_tick, added.created_at) == (False, None, clock.now())
        assert store.get_schedule("beat") == added
        assert store.list_schedules() == [added]
        assert store.get_schedule("other") is None

    def test_a_taken_name_is_refused(self, store: Store) -> None:
        store.add_schedule(every(30))
        with pytest.raises(StoreError, match="schedule 'beat' exists already"):
            store.add_schedule(every(60))

    def test_cron_in_a_time_zone(self, store: Store) -> None:
        # 09:00 in Berlin (UTC+1 in November) is 08:00 UTC.
        timing = Timing(cron="0 9 * * *", timezone="Europe/Berlin")
        added = store.add_schedule(ScheduleSpec("morning", "report", timing))
        assert iso(added.next_due) == "2023-11-15T08:00:00.000+00:00"
        assert store.get_schedule("morning") == added

    @pytest.mark.parametrize(
        ("make", "message"),
        [
            (lambda: Timing(), "exactly one of every and cron"),
            (lambda: Timing(every=5, cron="* * * * *"), "exactly one of every and cron"),
            (lambda: Timing(cron="61 * * * *"), "cron '61 \\* \\* \\* \\*'"),
            (lambda: Timing(cron="* * * * *", timezone="Mars/Base"), "timezone 'Mars/Base'"),
            (lambda: Timing(every=5, timezone="Europe/Berlin"), "cron schedules only"),
            (lambda: every(5, catch_up="some"), "catch-up 'some'"),
            (lambda: every(5, payload=[1]), "payload must be a JSON object"),
            (lambda: every(5, name="x" * 81), "at most 80 characters"),
        ],
    )
    def test_bad_specs_are_refused(self, make: Callable[[], object], message: str) -> None:
        with pytest.raises(UsageError, match=message):
            make()

    def test_put_adds_or_changes_keeping_the_next_tick_of_the_same_timing(
        self, store: Store, clock: VirtualClock
    ) -> None:
        added = store.put_schedule(every(30))
        assert added.next_due == START + 30
        store.pause_schedule("beat")
        clock.advance(10)
        changed = store.put_schedule(every(30, payload={"v": 2}, catch_up="all"))
        assert (changed.next_due, changed.paused, changed.created_at) == (START + 30, True, START)
        assert (changed.spec.payload, changed.spec.catch_up) == ({"v": 2}, "all")
        retimed = store.put_schedule(every(60))
        assert (retimed.next_due, retimed.spec.timing.every) == (START + 60, 60)
        assert store.list_schedules() == [retimed]

    def test_pause_resume_remove(self, store: Store, clock: VirtualClock) -> None:
        store.add_schedule(every(10))
        assert store.pause_schedule("beat").paused
        clock.advance(100)
        assert store.fire_schedules() is None  # nothing active
        assert tick_jobs(store) == []
        resumed = store.resume_schedule("beat")
        # Ticks that fell due while paused are skipped, whatever the catch-up.
        assert (resumed.paused, resumed.next_due) == (False, START + 110)
        store.remove_schedule("beat")
        assert store.list_schedules() == []
        for change in (store.pause_schedule, store.resume_schedule, store.remove_schedule):
            with pytest.raises(NotFoundError, match="no schedule 'beat'"):
                change("beat")


class TestFiring:
    def test_each_tick_enqueues_one_job_with_its_time(
        self, store: Store, clock: VirtualClock
    ) -> None:
        store.add_schedule(every(10, payload={"size": 3}, machine_type="worker"))
        assert store.fire_schedules() == START + 10
        assert tick_jobs(store) == []
        clock.advance(10)
        assert store.fire_schedules() == START + 20
        assert store.fire_schedules() == START + 20  # a second fire adds nothing
        job = store.get_job(f"sched:beat:{int(START) + 10}")
        assert job is not None
        assert (job.job_type, job.machine_type, job.status) == ("tick", "worker", "pending")
        assert job.data == {
            "size": 3,
            "schedule": "beat",
            "tick": int(START) + 10,
            "tick_at": iso(START + 10),
        }
        schedule = store.get_schedule("beat")
        assert schedule is not None and schedule.last_tick == START + 10

    def test_a_paused_schedule_does_not_fire(self, store: Store, clock: VirtualClock) -> None:
        store.add_schedule(every(10))
        store.add_schedule(every(60, name="slow"))
        store.pause_schedule("beat")
        clock.advance(10)
        assert store.fire_schedules() == START + 60
        assert tick_jobs(store) == []

    @pytest.mark.parametrize(
        ("catch_up", "ticks"),
        [("all", list(range(10, 101, 10))), ("latest", [100]), ("none", [100])],
    )
    def test_catch_up_after_downtime(
        self, store: Store, clock: VirtualClock, catch_up: str, ticks: list[int]
    ) -> None:
        store.add_schedule(every(10, catch_up=catch_up))
        clock.advance(105)
        assert store.fire_schedules() == START + 110
        assert [t - int(START) for _, t in tick_jobs(store)] == ticks

    @pytest.mark.parametrize(("catch_up", "ticks"), [("latest", [300]), ("none", [])])
    def test_none_drops_a_tick_missed_by_more_than_a_minute(
        self, store: Store, clock: VirtualClock, catch_up: str, ticks: list[int]
    ) -> None:
        spec = ScheduleSpec("fives", "tick", Timing(cron="*/5 * * * *"), catch_up=catch_up)
        store.add_schedule(spec)
        clock.advance(300 + 61)  # the tick at +300 s is 61 s late
        assert store.fire_schedules() == START + 600
        assert [t - int(START) for _, t in tick_jobs(store)] == ticks

    def test_all_goes_on_beyond_one_fire(self, store: Store, clock: VirtualClock) -> None:
        store.add_schedule(every(1, catch_up="all"))
        clock.advance(2500)
        due = store.fire_schedules()
        assert due == START + 1001  # at most 1,000 ticks per fire; due again at once
        while due is not None and due <= clock.now():
            due = store.fire_schedules()
        assert due == START + 2501
        assert [t for _, t in tick_jobs(store)] == list(range(int(START) + 1, int(START) + 2501))

    def test_a_schedule_this_host_cannot_evaluate_is_paused(
        self, store: Store, clock: VirtualClock, raw_sql: RawSql, caplog: pytest.LogCaptureFixture
    ) -> None:
        spec = ScheduleSpec("local", "tick", Timing(cron="* * * * *", timezone="Europe/Berlin"))
        store.add_schedule(spec)
        store.add_schedule(every(600))
        raw_sql(store, "UPDATE schedules SET timezone = 'Nowhere/Zone' WHERE name = 'local'")
        clock.advance(60)
        assert store.fire_schedules() == START + 600  # not due for ever: no spinning machines
        assert "schedule local cannot be evaluated here (timezone 'Nowhere/Zone'" in caplog.text
        assert raw_sql(store, "SELECT paused FROM schedules WHERE name = 'local'") == [
            {"paused": 1}
        ]
        assert tick_jobs(store) == []

    def test_concurrent_firers_enqueue_each_tick_once(
        self, open_store: Callable[..., Store], clock: VirtualClock
    ) -> None:
        stores = [open_store() for _ in range(4)]
        stores[0].add_schedule(every(1, catch_up="all"))
        errors: list[BaseException] = []
        for _ in range(20):
            clock.advance(1)
            barrier = threading.Barrier(len(stores))

            def fire(store: Store, barrier: threading.Barrier = barrier) -> None:
                try:
                    barrier.wait(timeout=30)
                    store.fire_schedules()
                except BaseException as exc:  # reported below
                    errors.append(exc)

            threads = [threading.Thread(target=fire, args=(s,)) for s in stores]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
        assert errors == []
        ticks = [t for _, t in tick_jobs(stores[0])]
        assert ticks == list(range(int(START) + 1, int(START) + 21))
