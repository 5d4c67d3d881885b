"""Checks shared by the schedule tests (tests/core, tests/e2e, tests/multihost): the machine
they run, and what the jobs of one schedule must look like after machine processes fired it
for a while."""

from __future__ import annotations

from dataclasses import dataclass

from statemachine_engine.database import Store

#: A worker of the schedule's `tick` jobs: logs each tick and waits for the next.
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

#: Seconds allowed at either edge of a run before its first and after its last tick: the
#: first fire may wait for a process to park, the last tick may still be due (busy host).
EDGE_SLACK = 3.0


@dataclass(frozen=True)
class TickJob:
    tick: int
    job_id: str
    status: str
    attempts: int
    created_at: float


def tick_jobs(store: Store, schedule: str) -> dict[int, TickJob]:
    """tick -> its job, for every job `schedule` enqueued; fails if a tick has two jobs."""
    jobs = [j for j in store.list_jobs(limit=100_000) if j.data.get("schedule") == schedule]
    ticks = [j.data["tick"] for j in jobs]
    assert len(ticks) == len(set(ticks)), f"{schedule}: a tick was enqueued twice: {sorted(ticks)}"
    return {
        j.data["tick"]: TickJob(j.data["tick"], j.job_id, j.status, j.attempts, j.created_at)
        for j in jobs
    }


def all_completed(store: Store, schedule: str) -> bool:
    jobs = tick_jobs(store, schedule)
    return bool(jobs) and all(job.status == "completed" for job in jobs.values())


def assert_each_tick_once(
    store: Store, schedule: str, began: float, ended: float, slack: float = EDGE_SLACK
) -> list[int]:
    """Every tick from the first to the last has exactly one job `sched:NAME:TICK`, completed
    at its first attempt and handled by exactly one `job_done` step; the ticks cover the run
    [began, ended] but for `slack` seconds at each edge; the schedule's last_tick is the last.
    Returns the ticks."""
    jobs = tick_jobs(store, schedule)
    ticks = sorted(jobs)
    assert ticks, f"{schedule}: no job enqueued"
    missing = sorted(set(range(ticks[0], ticks[-1] + 1)) - set(ticks))
    assert not missing, f"{schedule}: ticks missing {missing} of {ticks[0]}..{ticks[-1]}"
    assert ticks[0] <= began + slack, f"{schedule}: first tick {ticks[0]}, run began {began:.1f}"
    assert ticks[-1] >= ended - slack, f"{schedule}: last tick {ticks[-1]}, run ended {ended:.1f}"
    for tick, job in jobs.items():
        assert job.job_id == f"sched:{schedule}:{tick}", job
        assert (job.status, job.attempts) == ("completed", 1), job
    ids = {job.job_id for job in jobs.values()}
    handled = [
        r.job_id for r in store.history(limit=100_000) if r.event == "job_done" and r.job_id in ids
    ]
    assert sorted(handled) == sorted(ids), f"{schedule}: job_done steps differ from the jobs"
    stored = store.get_schedule(schedule)
    assert stored is not None and stored.last_tick == ticks[-1], (stored, ticks[-1])
    return ticks


def first_fire_after(store: Store, schedule: str, at: float) -> list[int]:
    """The ticks enqueued by the first fire of `schedule` at or after `at` (one fire is one
    transaction: its jobs share their created_at)."""
    later = [job for job in tick_jobs(store, schedule).values() if job.created_at >= at]
    assert later, f"{schedule}: nothing enqueued since {at:.1f}"
    first = min(job.created_at for job in later)
    return sorted(job.tick for job in later if job.created_at == first)
