"""SIGTERM during a PostgreSQL outage (issue 13 item 6): with `reconnect_timeout=40` a
worker used to take 76 s to stop, its cleanup going through the reconnect loop twice. It
acts within 2 s now (asserted < 5 s for a loaded machine): cleanup writes that cannot reach
the server are skipped with one WARNING, and the held job stays `processing` until its
lease expires, as after a crash. Runs on a private cluster, never the shared server."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from statemachine_engine.database.postgres import PostgresStore

from .pgcluster import Cluster, processes, wait_until

pytestmark = pytest.mark.timeout(120)

SKIPPED = "stopped without waiting for the database"

WORKER = """
name: outage worker
initial_state: waiting
states: [waiting, processing]
transitions:
  - {from: waiting, to: processing, event: new_job}
  - {from: waiting, to: waiting, event: no_jobs}
  - {from: processing, to: waiting, event: job_done}
  - {from: processing, to: waiting, event: error}
actions:
  waiting:
    - {type: check_database_queue, job_type: long}
  processing:
    - {type: bash, command: "echo $$ > {machine_name}.pid; sleep 60", timeout: 90,
       success: job_done}
"""


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    made = Cluster()
    try:
        made.start()
        yield made
    finally:
        made.remove()


def test_sigterm_during_an_outage_acts_within_2s(cluster: Cluster, tmp_path: Path) -> None:
    store = PostgresStore(cluster.local_url("outage"))
    url = cluster.tcp_url("outage") + "&reconnect_timeout=40"
    try:
        with processes(tmp_path) as procs:
            store.add_job("long", job_id="held")
            holder = procs.machine(WORKER, "holder", url)
            pid_file = tmp_path / "holder.pid"
            wait_until(lambda: pid_file.exists() and pid_file.read_text(), 20, "holder's bash")
            # The second worker re-checks the queue every second: during the outage its loop
            # sits in the store's reconnect loop.
            idle = procs.machine(WORKER, "idle", url, safety_interval=1)
            wait_until(
                lambda: (m := store.get_machine("idle")) is not None and m.status == "running",
                20,
                "idle worker running",
            )
            cluster.stop()
            idle_log = tmp_path / "idle.log"

            def reconnecting() -> bool:
                lines = idle_log.read_text(errors="replace").splitlines()
                return any(": connection lost (" in x and "LISTEN" not in x for x in lines)

            wait_until(reconnecting, 20, "the idle worker's loop reconnecting")
            took: dict[str, float] = {}
            for proc in (holder, idle):
                proc.send_signal(signal.SIGTERM)
            sent = time.monotonic()
            for name, proc in (("holder", holder), ("idle", idle)):
                proc.wait(timeout=90)
                took[name] = time.monotonic() - sent
            print(f"SIGTERM to exit during the outage: {took}")
            logs = {name: (tmp_path / f"{name}.log").read_text() for name in took}
            assert holder.returncode == 0, logs["holder"]
            assert idle.returncode == 0, logs["idle"]
            assert max(took.values()) < 5, took
            warned = [x for x in logs["holder"].splitlines() if SKIPPED in x]
            assert len(warned) == 1, logs["holder"]
            assert "WARNING" in warned[0] and "releasing job held" in warned[0]
            assert "unreachable" in warned[0]
            assert sum(SKIPPED in x for x in logs["idle"].splitlines()) == 1, logs["idle"]
            assert "Traceback" not in logs["holder"] + logs["idle"]

            cluster.start()
            job = wait_until(lambda: store.get_job("held"), 30, "the server back")
            assert job is not None
            assert (job.status, job.attempts) == ("processing", 1)  # its lease will expire
    finally:
        store.close()
