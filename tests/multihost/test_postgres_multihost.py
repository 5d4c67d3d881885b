"""Many hosts, one queue: worker processes in two network namespaces made by this test (a
veth pair between them, each with its own loopback) drain one PostgreSQL queue of 2,000 jobs,
each job completed exactly once; an event sent by a machine in one namespace wakes a machine
in the other through LISTEN/NOTIFY (separate runtime directories, so no Unix doorbell can
help, and an hour-long safety re-check, so polling cannot either).

The PostgreSQL server is a private cluster inside namespace A listening on A's veth address;
the test process itself reaches it through the cluster's Unix socket. Needs root and
`ip netns`; when either is missing the test fails, it never skips."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from statemachine_engine.database.postgres import PostgresStore

from .pgcluster import (
    PINGED,
    SENDER,
    WORKER,
    Cluster,
    Hosts,
    bulk_add,
    exactly_once_report,
    processes,
    run,
    wait_until,
)

pytestmark = pytest.mark.timeout(150)

JOBS = 2000
WORKERS_PER_HOST = 2


def test_two_hosts_drain_one_queue_and_wake_each_other(
    hosts: Hosts, cluster: Cluster, tmp_path: Path
) -> None:
    schema = "multihost"
    url = cluster.tcp_url(schema)  # the server's address inside namespace A
    store = PostgresStore(cluster.local_url(schema))
    run_a, run_b = tmp_path / "run-a", tmp_path / "run-b"

    def rows(query: str) -> list[dict[str, Any]]:
        return store.conn.read(lambda tx: tx.rows(query))

    # Host B reaches the server only over the veth pair.
    run(["ip", "netns", "exec", hosts.b, str(cluster.bindir / "pg_isready"), "-h", hosts.addr_a])
    try:
        with processes(tmp_path) as procs:
            for host, ns, runtime in (("a", hosts.a, run_a), ("b", hosts.b, run_b)):
                for n in range(WORKERS_PER_HOST):
                    procs.machine(
                        WORKER,
                        f"{host}-worker{n}",
                        url,
                        netns=ns,
                        runtime_dir=runtime,
                        safety_interval=5,
                    )
            wait_until(
                lambda: (
                    sum(m.status == "running" for m in store.list_machines())
                    == 2 * WORKERS_PER_HOST
                ),
                20,
                "workers on both hosts running",
            )
            hostnames = {m.hostname for m in store.list_machines()}
            started = time.monotonic()
            bulk_add(store, JOBS)
            enqueued = time.monotonic() - started
            wait_until(
                lambda: store.count_jobs()["completed"] == JOBS, 90, f"{JOBS} jobs completed"
            )
            drained = time.monotonic() - started
            report = exactly_once_report(rows, JOBS)
            per_host = {
                r["host"]: r["n"]
                for r in rows(
                    "SELECT left(machine_name, 1) AS host, count(*) AS n FROM transitions"
                    " WHERE event = 'job_done' GROUP BY 1"
                )
            }
            print(
                f"multihost: {JOBS} jobs enqueued in {enqueued:.1f} s, drained in {drained:.1f} s,"
                f" per host {per_host}, {report}"
            )
            assert report["not_completed"] == 0
            assert report["retried"] == 0
            assert report["done_steps"] == JOBS
            assert report["jobs_with_done_steps"] == JOBS
            assert report["completions_streamed"] == JOBS
            assert per_host.get("a", 0) > 0 and per_host.get("b", 0) > 0, per_host
            assert len(hostnames) >= 1

            # Wake-ups across hosts, both ways: B's sender wakes A's parked machine and back.
            latencies = {}
            for target_host, sender_host in (("a", "b"), ("b", "a")):
                target = f"pinged-{target_host}"
                ns = {"a": hosts.a, "b": hosts.b}
                runtime = {"a": run_a, "b": run_b}
                procs.machine(
                    PINGED, target, url, netns=ns[target_host], runtime_dir=runtime[target_host]
                )
                wait_until(
                    lambda target=target: (
                        (m := store.get_machine(target)) is not None and m.status == "running"
                    ),
                    20,
                    f"{target} running",
                )
                time.sleep(0.2)  # parked, with its hour-long safety re-check
                procs.machine(
                    SENDER,
                    f"sender-{sender_host}",
                    url,
                    netns=ns[sender_host],
                    runtime_dir=runtime[sender_host],
                    initial_context=json.dumps({"target": target}),
                )
                wait_until(
                    lambda target=target: (
                        (m := store.get_machine(target)) is not None and m.current_state == "got"
                    ),
                    10,
                    f"{target} woken by an event from host {sender_host}",
                )
                [event] = store.list_events(target=target)
                [step] = store.history(machine=target, limit=1)
                latencies[f"{sender_host}->{target_host}"] = step.created_at - event.created_at
            print(f"multihost: event wake-up latency {latencies}")
            assert all(latency < 1.0 for latency in latencies.values()), latencies
    finally:
        store.close()
