"""Queue throughput with 1, 2, 4 and 8 worker processes on PostgreSQL and on SQLite, and
enqueue-to-pickup latency of a parked worker on PostgreSQL (wake-up by LISTEN/NOTIFY).

Run: `.venv/bin/python bench/pg_bench.py [--jobs 2000] [--workers 1,2,4,8] [--pg URL]`.
PostgreSQL is the STATEMACHINE_TEST_PG server (or the local default); each run gets a fresh
schema, dropped afterwards. Results are printed and written to bench/results/pg_latest.json.
"""

from __future__ import annotations

import argparse
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

from statemachine_engine.database import NewJob, open_store
from statemachine_engine.database.postgres import testing as pg
from statemachine_engine.database.store import Store

BIN = Path(sys.executable).parent
RESULTS = Path(__file__).resolve().parent / "results" / "pg_latest.json"
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


def start_workers(workdir: Path, url: str, count: int) -> list[subprocess.Popen[bytes]]:
    config = workdir / "worker.yaml"
    config.write_text(WORKER)
    env = {k: v for k, v in os.environ.items() if not k.startswith("STATEMACHINE_")}
    env["STATEMACHINE_RUNTIME_DIR"] = str(workdir / "run")
    return [
        subprocess.Popen(
            [
                str(BIN / "statemachine"),
                str(config),
                "--machine-name",
                f"bench{n}",
                "--db",
                url,
                "--log-level",
                "ERROR",
                "--safety-interval",
                "60",
            ],
            cwd=workdir,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for n in range(count)
    ]


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: {what} did not happen within {timeout} s")
        time.sleep(0.02)


def bulk_enqueue(store: Store, jobs: int) -> None:
    """Enqueue `jobs` jobs in one transaction (so the measurement is the drain alone)."""
    store.add_jobs(NewJob("bench", {}, job_id=f"job-{n:06d}") for n in range(jobs))


def throughput(url: str, workers: int, jobs: int) -> float:
    with tempfile.TemporaryDirectory(prefix="smpgb-", dir="/tmp") as tmp:
        workdir = Path(tmp)
        (workdir / "run").mkdir(mode=0o700)
        os.environ["STATEMACHINE_RUNTIME_DIR"] = str(workdir / "run")  # for ring_all (SQLite)
        store = open_store(url)
        procs = start_workers(workdir, url, workers)
        try:
            wait(
                lambda: sum(m.status == "running" for m in store.list_machines()) == workers,
                30,
                "workers running",
            )
            time.sleep(0.3)
            started = time.perf_counter()
            bulk_enqueue(store, jobs)
            wait(lambda: store.count_jobs()["completed"] == jobs, 300, f"{jobs} jobs drained")
            return jobs / (time.perf_counter() - started)
        finally:
            stop(procs)
            store.close()


def pickup_latency(url: str, samples: int) -> dict[str, float]:
    """A parked worker; one job at a time: created_at -> started_at (claim), in ms."""
    with tempfile.TemporaryDirectory(prefix="smpgb-", dir="/tmp") as tmp:
        workdir = Path(tmp)
        (workdir / "run").mkdir(mode=0o700)
        store = open_store(url)
        procs = start_workers(workdir, url, 1)
        latencies = []
        try:
            wait(lambda: len(store.list_machines()) == 1, 30, "worker running")
            for n in range(samples):
                time.sleep(0.05)  # parked again
                job = store.add_job("bench", job_id=f"lat-{n}")
                wait(
                    lambda job=job: (
                        (j := store.get_job(job.job_id)) is not None and j.status == "completed"
                    ),
                    10,
                    "pickup",
                )
                done = store.get_job(job.job_id)
                assert done is not None and done.started_at is not None
                latencies.append((done.started_at - job.created_at) * 1000)
        finally:
            stop(procs)
            store.close()
    latencies.sort()
    return {
        "p50_ms": statistics.median(latencies),
        "p95_ms": latencies[int(len(latencies) * 0.95) - 1],
        "max_ms": latencies[-1],
        "samples": float(len(latencies)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--workers", default="1,2,4,8")
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--pg", default=None)
    parser.add_argument("--backends", default="postgresql,sqlite")
    args = parser.parse_args()
    server = pg.check_server(args.pg or pg.server_url())
    counts = [int(n) for n in args.workers.split(",")]
    results: dict[str, Any] = {"jobs": args.jobs, "throughput": {}, "pickup_pg": {}}
    for backend in args.backends.split(","):
        results["throughput"][backend] = {}
        for workers in counts:
            if backend == "postgresql":
                url = pg.fresh_schema_url(server, prefix="bench_")
                try:
                    rate = throughput(url, workers, args.jobs)
                finally:
                    pg.drop_schema(url)
            else:
                with tempfile.TemporaryDirectory(prefix="smpgb-db-") as tmp:
                    rate = throughput(f"sqlite:///{tmp}/bench.db", workers, args.jobs)
            results["throughput"][backend][workers] = round(rate, 1)
            print(f"{backend:10} {workers} workers: {rate:8.1f} jobs/s", flush=True)
    url = pg.fresh_schema_url(server, prefix="bench_")
    try:
        results["pickup_pg"] = pickup_latency(url, args.samples)
    finally:
        pg.drop_schema(url)
    print(
        "pickup latency on PostgreSQL (enqueue -> claim by a parked worker): "
        + ", ".join(f"{k} {v:.2f}" for k, v in results["pickup_pg"].items())
    )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
