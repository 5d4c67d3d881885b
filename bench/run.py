"""Benchmarks of the engine on this machine (run by `make bench`, never by `make test`).

Measures single-worker throughput with a trivial action, enqueue-to-pickup latency of a
parked worker, and the raw SQLite commit rate with the same durability settings as the
physical limit. Results are printed as a table and written to bench/results/latest.json.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import apsw

from statemachine_engine.database import open_store
from statemachine_engine.transport import ring_all

WORKER = """
name: bench worker
initial_state: waiting
states: [waiting, processing]
transitions:
  - {from: waiting, to: processing, event: new_job}
  - {from: waiting, to: waiting, event: no_jobs}
  - {from: processing, to: waiting, event: job_done}
actions:
  waiting:
    - {type: check_database_queue, job_type: bench}
  processing:
    - {type: log, message: "job {job_id}", level: debug, success: job_done}
"""


def start_worker(workdir: Path, url: str, name: str = "bench") -> subprocess.Popen[bytes]:
    config = workdir / "worker.yaml"
    config.write_text(WORKER)
    exe = Path(sys.executable).parent / "statemachine"
    return subprocess.Popen(
        [
            str(exe),
            str(config),
            "--machine-name",
            name,
            "--db",
            url,
            "--log-level",
            "ERROR",
            "--safety-interval",
            "60",
        ],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_until(predicate: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark condition not reached")
        time.sleep(0.005)


def throughput(workdir: Path, jobs: int = 2000) -> float:
    url = f"sqlite:///{workdir}/tp.db"
    store = open_store(url)
    for i in range(jobs):
        store.add_job("bench", {"i": i}, job_id=f"j{i}")
    proc = start_worker(workdir, url)
    start = time.monotonic()
    wait_until(lambda: store.count_jobs()["completed"] == jobs, 300)
    elapsed = time.monotonic() - start
    stop(proc)
    return jobs / elapsed


def pickup_latency(workdir: Path, samples: int = 200) -> tuple[float, float]:
    url = f"sqlite:///{workdir}/lat.db"
    store = open_store(url)
    proc = start_worker(workdir, url, "latency")
    wait_until(lambda: (m := store.get_machine("latency")) is not None and m.pid == proc.pid, 30)
    latencies = []
    for i in range(samples):
        job = store.add_job("bench", None, job_id=f"l{i}")
        ring_all({"kind": "job", "job_type": "bench"})
        wait_until(
            lambda j=job.job_id: (g := store.get_job(j)) is not None and g.started_at is not None,
            10,
        )
        got = store.get_job(job.job_id)
        assert got is not None and got.started_at is not None
        latencies.append((got.started_at - got.created_at) * 1000)
        wait_until(
            lambda j=job.job_id: (g := store.get_job(j)) is not None and g.status == "completed", 10
        )
    stop(proc)
    latencies.sort()
    return statistics.median(latencies), latencies[int(len(latencies) * 0.99) - 1]


def raw_commits(workdir: Path, n: int = 3000) -> float:
    db = apsw.Connection(str(workdir / "raw.db"))
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    start = time.monotonic()
    for i in range(n):
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t (v) VALUES (?)", (str(i),))
        db.execute("COMMIT")
    return n / (time.monotonic() - start)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=10)


def main() -> int:
    os.environ.setdefault("STATEMACHINE_RUNTIME_DIR", tempfile.mkdtemp(prefix="smb"))
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        results["raw_sqlite_commits_per_s"] = raw_commits(workdir)
        results["jobs_per_s_one_worker_log"] = throughput(workdir)
        p50, p99 = pickup_latency(workdir)
        results["pickup_latency_p50_ms"] = p50
        results["pickup_latency_p99_ms"] = p99
    # One job takes about three commits (claim, enter processing, complete on return).
    results["ratio_to_raw_commit_limit"] = (
        results["jobs_per_s_one_worker_log"] * 3 / results["raw_sqlite_commits_per_s"]
    )
    width = max(len(k) for k in results)
    for key, value in results.items():
        print(f"{key.ljust(width)}  {value:10.2f}")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
