"""A schedule `--every 1s` on PostgreSQL with three machine processes on two hosts (two in
namespace A beside the server, one in namespace B reaching it over the veth pair) for 30 s:
every tick between the first and the last is enqueued exactly once, as `sched:beat:TICK`,
and completed at its first attempt; the run's every second has its tick. The schedule is
added with `statemachine-cli` before the machines start; no process is special."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from statemachine_engine.database.postgres import PostgresStore

from ..schedule_checks import TICKER, all_completed, assert_each_tick_once
from .pgcluster import BIN, Cluster, Hosts, processes, wait_until

pytestmark = pytest.mark.timeout(300)

RUN_SECONDS = 30


def test_three_processes_on_two_hosts_enqueue_each_tick_once(
    hosts: Hosts, cluster: Cluster, tmp_path: Path
) -> None:
    schema = "schedules"
    url = cluster.tcp_url(schema)  # the server's address inside namespace A
    store = PostgresStore(cluster.local_url(schema))
    env = {k: v for k, v in os.environ.items() if not k.startswith("STATEMACHINE_")}
    subprocess.run(
        [
            *(str(BIN / "statemachine-cli"), "--db", cluster.local_url(schema)),
            *("schedule", "add", "beat", "--every", "1s", "--type", "tick", "--catch-up", "all"),
        ],
        env=env,
        check=True,
        timeout=30,
    )
    placement = [("a1", hosts.a), ("a2", hosts.a), ("b1", hosts.b)]
    try:
        with processes(tmp_path) as procs:
            for name, ns in placement:
                runtime = tmp_path / f"run-{name[0]}"  # one runtime directory per host
                procs.machine(TICKER, name, url, netns=ns, runtime_dir=runtime, safety_interval=5)
            wait_until(
                lambda: sum(m.status == "running" for m in store.list_machines()) == len(placement),
                60,
                "three machines on two hosts running",
            )
            t0 = time.monotonic()
            began = store.clock.now()
            # The run window is a measurement: the three processes fire the schedule.
            wait_until(
                lambda: store.clock.now() >= began + RUN_SECONDS, RUN_SECONDS + 30, "the run"
            )
            # Paused, no tick falls between the last completion and the stop.
            store.pause_schedule("beat")
            ended = store.clock.now()
            wait_until(lambda: all_completed(store, "beat"), 60, "every tick's job completed")
            procs.close()
            run_s = time.monotonic() - t0
            ticks = assert_each_tick_once(store, "beat", began, ended)
            per_machine: dict[str, int] = {}
            for step in store.history(limit=100_000):
                if step.event == "job_done":
                    per_machine[step.machine_name] = per_machine.get(step.machine_name, 0) + 1
            print(
                f"two hosts, {RUN_SECONDS} s: {len(ticks)} ticks in {run_s:.1f} s,"
                f" handled per machine {per_machine}"
            )
    finally:
        store.close()
