"""A machine process fires its database's schedules when it would park, and parks no longer
than the next tick: on a VirtualClock a day of ticks runs in-process in moments."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from statemachine_engine.clock import VirtualClock
from statemachine_engine.database.schedules import ScheduleSpec
from statemachine_engine.database.sqlite import SQLiteStore
from statemachine_engine.ticks import Timing

from ..schedule_checks import TICKER

StartMachine = Callable[..., Awaitable[Any]]
Until = Callable[..., Awaitable[None]]
DAY = 86_400
STEP = 300


def done(store: SQLiteStore) -> int:
    return store.count_jobs(job_type="tick")["completed"]


def completed_ticks(store: SQLiteStore) -> list[int]:
    jobs = store.list_jobs(status="completed", job_type="tick", limit=10_000)
    return sorted(job.data["tick"] for job in jobs)


async def test_a_day_of_five_minute_ticks_on_a_virtual_clock(
    machine: StartMachine, store: SQLiteStore, until: Until
) -> None:
    clock = VirtualClock()
    clock.advance(-(clock.now() % STEP))  # on a tick
    store.clock = clock
    start = int(clock.now())
    store.add_schedule(ScheduleSpec("fives", "tick", Timing(every=STEP), catch_up="all"))
    # The machine's safety re-check is an hour (the fixture's): only the schedule's own
    # wake-up can make it fire each tick in time.
    m = await machine(TICKER, "ticker", clock=clock)
    began = time.monotonic()
    for n in range(1, DAY // STEP + 1):
        await m.engine.wait_parked(timeout=30)
        clock.advance(STEP)
        await until(lambda n=n: done(store) == n, timeout=30)
    assert completed_ticks(store) == list(range(start + STEP, start + DAY + 1, STEP))
    assert time.monotonic() - began < 120  # in-process, nothing slept on the real clock


async def test_a_paused_schedule_lets_the_machine_sleep(
    machine: StartMachine, store: SQLiteStore, until: Until
) -> None:
    clock = VirtualClock()
    store.clock = clock
    store.add_schedule(ScheduleSpec("often", "tick", Timing(every=1), catch_up="latest"))
    store.pause_schedule("often")
    m = await machine(TICKER, "ticker", clock=clock, safety_interval=30.0)
    await m.engine.wait_parked(timeout=30)
    clock.advance(29)
    await m.engine.wait_parked(timeout=30)
    assert completed_ticks(store) == []
    store.resume_schedule("often")  # seen at the machine's next safety re-check
    clock.advance(2)
    await until(lambda: done(store) == 1, timeout=30)
