"""Schedules `--every 1s` with three real `statemachine` processes: every tick of the run is
enqueued as exactly one job (no gap, no duplicate) and handled once, with no daemon besides
the machines; then all processes stop for a few seconds and the first fire after the restart
enqueues what `--catch-up` promises: every missed tick (`all`) or only the latest (`latest`).

SQLite runs 30 s (issue 17); the single-host PostgreSQL run is short, the 30 s PostgreSQL
run is the two-host one in tests/multihost/test_postgres_schedules.py."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from statemachine_engine.database import Store
from statemachine_engine.database.postgres import testing as pg

from ..schedule_checks import (
    TICKER,
    all_completed,
    assert_each_tick_once,
    first_fire_after,
    tick_jobs,
)

pytestmark = pytest.mark.timeout(300)

RUN_SECONDS = {"sqlite": 30, "postgres": 8}
DOWNTIME = 3.0
MACHINES = 3


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield "sqlite:///" + str(tmp_path / "e2e.db")
        return
    url = pg.fresh_schema_url(pg.check_server(), prefix="e2e_")
    yield url
    pg.drop_schema(url)


def test_three_processes_enqueue_each_tick_once_and_catch_up(
    db_url: str,
    workdir: Path,
    store: Store,
    cli: Callable[..., subprocess.CompletedProcess[str]],
    run_machine: Callable[..., subprocess.Popen[str]],
    wait_machine: Callable[..., object],
    wait_until: Callable[..., object],
) -> None:
    run_seconds = RUN_SECONDS["sqlite" if db_url.startswith("sqlite") else "postgres"]
    config = workdir / "ticker.yaml"
    config.write_text(TICKER)
    cli("schedule", "add", "beat", "--every", "1s", "--type", "tick", "--catch-up", "all")
    cli("schedule", "add", "late", "--every", "1s", "--type", "tick", "--catch-up", "latest")

    def start_all() -> list[subprocess.Popen[str]]:
        procs = [run_machine(config, f"ticker-{n}") for n in range(1, MACHINES + 1)]
        for n, proc in enumerate(procs, 1):
            wait_machine(proc, f"ticker-{n}", timeout=60)
        return procs

    def stop_all(procs: list[subprocess.Popen[str]]) -> None:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            assert proc.wait(timeout=30) == 0

    procs = start_all()
    t0 = time.monotonic()
    began = store.clock.now()
    # The run window is a measurement: three processes fire the schedules for run_seconds.
    wait_until(
        lambda: store.clock.now() >= began + run_seconds, timeout=run_seconds + 30, what="the run"
    )
    stop_all(procs)
    down_at = store.clock.now()
    run_s = time.monotonic() - t0
    ticks = len(tick_jobs(store, "beat"))
    print(f"{run_seconds} s run: {ticks} ticks, {ticks / run_s:.2f} per second")

    # Downtime: nothing runs for DOWNTIME seconds, so at least 3 ticks of each schedule fall
    # due unfired.
    last_late = max(tick_jobs(store, "late"))
    wait_until(
        lambda: store.clock.now() >= down_at + DOWNTIME, timeout=DOWNTIME + 10, what="downtime"
    )
    up_at = store.clock.now()
    procs = start_all()
    wait_until(
        lambda: max(tick_jobs(store, "beat")) >= up_at + 3, timeout=60, what="ticks after restart"
    )
    # Paused, no tick can fall between the last job's completion and the stop (a job held
    # at the stop would go back to `pending`).
    store.pause_schedule("beat")
    store.pause_schedule("late")
    ended = store.clock.now()
    wait_until(lambda: all_completed(store, "beat"), timeout=60, what="every tick's job done")
    wait_until(lambda: all_completed(store, "late"), timeout=60, what="every tick's job done")
    stop_all(procs)

    # `all`: the whole run, downtime included, has each tick exactly once.
    assert_each_tick_once(store, "beat", began, ended)
    caught_up = first_fire_after(store, "beat", up_at)
    assert len(caught_up) >= DOWNTIME, f"catch-up all enqueued only {caught_up}"
    assert caught_up[0] <= down_at + 1, (caught_up, down_at)
    # `latest`: the restart's first fire enqueues one job, for the newest tick; the ticks
    # between it and the last one before the stop are never enqueued.
    [latest] = first_fire_after(store, "late", up_at)
    late = tick_jobs(store, "late")
    assert latest - last_late > DOWNTIME - 1, (last_late, latest)
    assert not [t for t in late if last_late < t < latest], sorted(late)
    assert all(job.attempts == 1 for job in late.values())
    assert len({job.job_id for job in late.values()}) == len(late)
