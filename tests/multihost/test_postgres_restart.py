"""PostgreSQL restarted (`pg_ctl restart -m immediate`, i.e. a crash and recovery) while four
worker processes drain 1,000 jobs: every job completes exactly once, and the workers log the
lost connection and carry on. Runs on a private throwaway cluster, never the shared server."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from statemachine_engine.database.postgres import PostgresStore

from .pgcluster import (
    PINGED,
    SLOW_WORKER,
    WORKER,
    Cluster,
    bulk_add,
    exactly_once_report,
    processes,
    wait_until,
)

pytestmark = pytest.mark.timeout(120)

JOBS = 1000
WORKERS = 4


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    made = Cluster()
    try:
        made.start()
        yield made
    finally:
        made.remove()


def test_restart_while_draining_loses_and_repeats_nothing(cluster: Cluster, tmp_path: Path) -> None:
    store = PostgresStore(cluster.local_url("restart"))
    try:

        def rows(query: str) -> list[dict[str, Any]]:
            return store.conn.read(lambda tx: tx.rows(query))

        with processes(tmp_path) as procs:
            for n in range(WORKERS):
                procs.machine(SLOW_WORKER, f"w{n}", cluster.tcp_url("restart"), safety_interval=5)
            wait_until(
                lambda: sum(m.status == "running" for m in store.list_machines()) == WORKERS,
                20,
                "4 workers running",
            )
            bulk_add(store, JOBS)
            wait_until(lambda: store.count_jobs()["completed"] >= 100, 30, "100 jobs completed")

            at_restart = store.count_jobs()["completed"]
            restarted = time.monotonic()
            cluster.restart("immediate")
            done_before = store.count_jobs()["completed"]  # the store reconnects by itself
            wait_until(
                lambda: store.count_jobs()["completed"] == JOBS, 60, f"all {JOBS} jobs completed"
            )
            drained_after = time.monotonic() - restarted
            report = exactly_once_report(rows, JOBS)
            print(
                f"restart at {at_restart} done, {done_before} once the server was back,"
                f" all drained {drained_after:.1f} s after the restart began"
            )
            print(report)
            assert done_before < JOBS * 0.9, "the restart did not hit the middle of the drain"
            assert report["not_completed"] == 0
            assert report["retried"] == 0
            assert report["done_steps"] == JOBS
            assert report["jobs_with_done_steps"] == JOBS
            assert report["completions_streamed"] == JOBS
            assert all(p.poll() is None for p, _ in procs.started), "a worker died"
            wait_until(  # the log contract of docs/postgresql.md (logs may lag)
                lambda: all(logged_the_outage(text) for text in procs.log_texts()),
                30,
                "every worker logged the lost connection and the reconnect",
            )
            assert "database system was interrupted" in cluster.log_text() or (
                "terminating" in cluster.log_text() or "recovery" in cluster.log_text()
            )
    finally:
        store.close()


def logged_the_outage(text: str) -> bool:
    """The store's connection of a worker that was busy through a restart logs both lines
    of the contract, whatever it was doing when the server went away (query, COMMIT, idle)."""
    return (
        "connection lost (" in text
        and "); reconnecting" in text
        and ": reconnected after " in text
        and text.index("connection lost (") < text.index(": reconnected after ")
    )


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_worker_started_before_the_server_waits_with_backoff(tmp_path: Path) -> None:
    cluster = Cluster()  # initialised, not started yet
    try:
        with processes(tmp_path) as procs:
            url = cluster.tcp_url("late") + "&start_timeout=60"
            worker = procs.machine(WORKER, "early", url, safety_interval=5)
            # Past interpreter start-up once the first retry is logged: now only retrying.
            wait_until(lambda: "not reachable, retrying" in procs.log_texts()[0], 30, "first retry")
            before = cpu_seconds(worker.pid)
            time.sleep(3.0)
            waiting_cpu = (cpu_seconds(worker.pid) - before) / 3.0
            assert worker.poll() is None, procs.logs()
            cluster.start()
            store = PostgresStore(cluster.local_url("late") + "&start_timeout=10")
            try:
                wait_until(lambda: store.get_machine("early") is not None, 20, "worker running")
                for n in range(20):
                    store.add_job("drain", job_id=f"j{n}")
                wait_until(lambda: store.count_jobs()["completed"] == 20, 20, "20 jobs done")
            finally:
                store.close()
            print(f"waiting for the server: {waiting_cpu:.1%} CPU")
            # A retry loop without backoff keeps a core busy; a loaded host adds a few %.
            assert waiting_cpu < 0.15
            assert "not reachable, retrying" in procs.log_texts()[0]
    finally:
        cluster.remove()


def test_work_added_while_the_listener_is_away_is_caught_up(
    cluster: Cluster, tmp_path: Path
) -> None:
    """RELIABILITY-TESTS #16, second half: parked machines whose only wake-ups are NOTIFYs
    (an hour-long safety re-check) miss those sent while their listeners are still backing
    off after a server outage; once they LISTEN again they catch up: the jobs and the event
    sent meanwhile are handled within seconds, not at the next re-check."""
    store = PostgresStore(cluster.local_url("catchup"))
    try:
        with processes(tmp_path) as procs:
            url = cluster.tcp_url("catchup")
            procs.machine(WORKER, "w", url, safety_interval=3600)
            procs.machine(PINGED, "p", url, safety_interval=3600)
            wait_until(
                lambda: sum(m.status == "running" for m in store.list_machines()) == 2,
                20,
                "both machines running",
            )
            store.add_job("drain", job_id="before")
            wait_until(lambda: store.count_jobs()["completed"] == 1, 20, "the first job done")
            cluster.stop()
            wait_until(  # the listeners back off: NOTIFYs right after the start are missed
                lambda: all(t.count("not reachable, retrying") >= 4 for t in procs.log_texts()),
                30,
                "both listeners retrying with backoff",
            )
            cluster.start()
            for n in range(5):  # the store reconnects by itself; the machines' NOTIFYs are lost
                store.add_job("drain", job_id=f"during{n}")
            store.send_event("p", "ping")
            wait_until(
                lambda: store.count_jobs()["completed"] == 6, 30, "the jobs added meanwhile done"
            )
            wait_until(
                lambda: (m := store.get_machine("p")) is not None and m.current_state == "got",
                30,
                "the event sent meanwhile handled",
            )
            assert all(p.poll() is None for p, _ in procs.started), procs.logs()
    finally:
        store.close()
