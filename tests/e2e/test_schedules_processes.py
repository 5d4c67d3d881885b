"""A schedule `--every 1s` with three real `statemachine` processes, on SQLite and on
PostgreSQL: every tick of the run is enqueued as exactly one job (no gap, no duplicate) and
handled once, with no daemon besides the machines."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from statemachine_engine.database import Store
from statemachine_engine.database.postgres import testing as pg

pytestmark = pytest.mark.timeout(180)

RUN_SECONDS = 8
TICKER = """
name: ticker
initial_state: waiting
states: [waiting, working]
actions:
  waiting: [{type: check_database_queue, job_type: tick}]
  working: [{type: log, message: "tick {data.tick}", success: job_done}]
transitions:
  - {from: waiting, to: working, event: new_job}
  - {from: waiting, to: waiting, event: no_jobs}
  - {from: working, to: waiting, event: job_done}
"""


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield "sqlite:///" + str(tmp_path / "e2e.db")
        return
    url = pg.fresh_schema_url(pg.check_server(), prefix="e2e_")
    yield url
    pg.drop_schema(url)


def tick_jobs(store: Store) -> dict[int, tuple[str, str, int]]:
    """tick -> (job id, status, attempts) of every job the schedule enqueued."""
    jobs = store.list_jobs(job_type="tick", limit=10_000)
    ticks = [j.data["tick"] for j in jobs]
    assert len(ticks) == len(set(ticks)), f"a tick was enqueued twice: {sorted(ticks)}"
    return {j.data["tick"]: (j.job_id, j.status, j.attempts) for j in jobs}


def test_three_processes_enqueue_each_tick_once(
    workdir: Path,
    store: Store,
    cli: Callable[..., subprocess.CompletedProcess[str]],
    run_machine: Callable[..., subprocess.Popen[str]],
    wait_machine: Callable[..., object],
    wait_until: Callable[..., object],
) -> None:
    config = workdir / "ticker.yaml"
    config.write_text(TICKER)
    cli("schedule", "add", "beat", "--every", "1s", "--type", "tick", "--catch-up", "all")
    procs = [run_machine(config, f"ticker-{n}") for n in (1, 2, 3)]
    for n, proc in enumerate(procs, 1):
        wait_machine(proc, f"ticker-{n}", timeout=30)

    began = store.clock.now()
    wait_until(
        lambda: len(tick_jobs(store)) >= RUN_SECONDS and store.clock.now() >= began + RUN_SECONDS,
        timeout=60,
        what=f"{RUN_SECONDS} ticks enqueued",
    )
    ended = store.clock.now()
    wait_until(
        lambda: all(status == "completed" for _, status, _ in tick_jobs(store).values()),
        timeout=30,
        what="every tick's job completed",
    )
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait(timeout=30)

    jobs = tick_jobs(store)
    ticks = sorted(jobs)
    assert ticks == list(range(ticks[0], ticks[-1] + 1)), f"a tick is missing: {ticks}"
    # the run's every second has its tick (generous edges for a busy machine)
    assert ticks[0] <= began + 3 and ticks[-1] >= ended - 3, (began, ended, ticks)
    for tick, (job_id, status, attempts) in jobs.items():
        assert job_id == f"sched:beat:{tick}"
        if status == "completed":
            assert attempts == 1, (job_id, attempts)
    handled = [r.job_id for r in store.history(limit=10_000) if r.event == "job_done"]
    assert sorted(handled) == sorted(
        job_id for job_id, status, _ in jobs.values() if status == "completed"
    )
    schedule = store.get_schedule("beat")
    assert schedule is not None and schedule.last_tick == ticks[-1]
