"""Soak run: 3 machine processes drain a steady stream of jobs and pass events around a ring
(soak-0 -> soak-1 -> soak-2 -> soak-0) for --minutes; every 10 s it samples each machine's
RSS, open file descriptors and zombie children, and the database and -wal sizes. At the end
it prints the table and the drift after warm-up, checks that nothing was lost, and writes
JSON to bench/results/soak-<timestamp>.json. Not part of the test suite.

    python bench/soak.py [--minutes 10] [--rate 20] [--sample 10]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
MACHINES = 3

MACHINE = """
name: soak machine
initial_state: waiting
states: [waiting, working, pinged]
events: [new_job, no_jobs, ran, done, ping, noted, error]
transitions:
  - from: waiting
    to: working
    event: new_job
    actions:
      - type: check_database_queue
        params: {{job_type: soak}}
  - {{from: waiting, to: waiting, event: no_jobs}}
  - from: working
    to: waiting
    event: done
    actions:
      - type: bash
        params: {{command: "printf %s {{data.n}} > /dev/null", success: ran}}
      - type: send_event
        params:
          target_machine: {next}
          event_type: ping
          payload: {{job: "{{job_id}}"}}
          success: done
  - {{from: working, to: waiting, event: error}}
  - {{from: waiting, to: pinged, event: ping}}
  - from: pinged
    to: waiting
    event: noted
    actions:
      - type: log
        params: {{message: "ping for {{event_data.payload.job}}", level: debug, success: noted}}
"""


def proc_stats(pid: int) -> dict[str, int]:
    """RSS (KiB), open FDs and zombie children of one process, from /proc."""
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    zombies = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] == "Z" and int(fields[1]) == pid:
            zombies += 1
    return {"rss_kib": rss, "fds": fds, "zombies": zombies}


def size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def drift(first: float, last: float) -> float:
    return 0.0 if first == 0 else (last - first) / first * 100


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=20.0, help="jobs enqueued per second")
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--warmup", type=float, default=0.2, help="fraction of the run ignored")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="smsoak-", dir="/tmp"))
    runtime = work / "run"
    runtime.mkdir(mode=0o700)
    os.environ["STATEMACHINE_RUNTIME_DIR"] = str(runtime)
    db_path = work / "soak.db"
    url = f"sqlite:///{db_path}"

    from statemachine_engine.database.sqlite import SQLiteStore
    from statemachine_engine.transport import ring_all

    store = SQLiteStore(str(db_path))
    procs: list[subprocess.Popen[bytes]] = []
    for n in range(MACHINES):
        config = work / f"soak-{n}.yaml"
        config.write_text(MACHINE.format(next=f"soak-{(n + 1) % MACHINES}"))
        log = (work / f"soak-{n}.log").open("wb")
        argv = [str(BIN / "statemachine"), str(config), "--machine-name", f"soak-{n}"]
        procs.append(
            subprocess.Popen(
                [*argv, "--db", url, "--log-level", "WARNING"],
                cwd=work,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"},
            )
        )
    time.sleep(2.0)

    duration = args.minutes * 60
    started = time.monotonic()
    next_sample = started
    added = 0
    samples: list[dict[str, Any]] = []
    print(
        f"{'t (s)':>6} {'jobs done':>9} {'backlog':>7} {'events':>7} "
        f"{'RSS KiB (max)':>13} {'FDs (max)':>9} {'zombies':>7} {'db KiB':>8} {'wal KiB':>8}"
    )
    while True:
        now = time.monotonic()
        elapsed = now - started
        if elapsed >= duration:
            break
        due = int(elapsed * args.rate)
        if due > added:
            for _ in range(due - added):
                store.add_job("soak", {"n": added}, job_id=f"soak-{added:07d}")
                added += 1
            ring_all({"kind": "job", "job_type": "soak"})
        if now >= next_sample:
            per = [proc_stats(p.pid) for p in procs]
            counts = store.count_jobs()
            events = store.conn.one(
                "SELECT COUNT(*) AS n FROM machine_events WHERE status = 'processed'"
            )
            sample = {
                "t": round(elapsed, 1),
                "completed": counts["completed"],
                "backlog": counts["pending"] + counts["processing"],
                "events_processed": events["n"] if events else 0,
                "rss_kib": [s["rss_kib"] for s in per],
                "fds": [s["fds"] for s in per],
                "zombies": sum(s["zombies"] for s in per),
                "db_kib": size(db_path) // 1024,
                "wal_kib": size(Path(f"{db_path}-wal")) // 1024,
            }
            samples.append(sample)
            print(
                f"{sample['t']:>6} {sample['completed']:>9} {sample['backlog']:>7} "
                f"{sample['events_processed']:>7} {max(sample['rss_kib']):>13} "
                f"{max(sample['fds']):>9} {sample['zombies']:>7} {sample['db_kib']:>8} "
                f"{sample['wal_kib']:>8}",
                flush=True,
            )
            next_sample += args.sample
        time.sleep(0.01)

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and store.count_jobs()["completed"] < added:
        time.sleep(0.1)
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    codes = [proc.wait(timeout=15) for proc in procs]
    counts = store.count_jobs()
    pending_events = store.conn.one(
        "SELECT COUNT(*) AS n FROM machine_events WHERE status = 'pending'"
    )
    dup = store.conn.one(
        "SELECT COUNT(*) AS n FROM (SELECT job_id FROM machine_events"
        " GROUP BY json_extract(payload, '$.job') HAVING COUNT(*) > 1)"
    )
    integrity = store.conn.rows("PRAGMA integrity_check")
    store.close()

    warm = [s for s in samples if s["t"] >= duration * args.warmup] or samples
    first, last = warm[0], warm[-1]
    jobs_between = max(last["completed"] - first["completed"], 1)
    summary = {
        "minutes": args.minutes,
        "rate_jobs_per_s": args.rate,
        "jobs_added": added,
        "jobs": counts,
        "events_pending_at_end": pending_events["n"] if pending_events else None,
        "events_duplicated": dup["n"] if dup else None,
        "exit_codes": codes,
        "integrity_check": [r["integrity_check"] for r in integrity],
        "drift_after_warmup_percent": {
            "rss_max": round(drift(max(first["rss_kib"]), max(last["rss_kib"])), 1),
            "fds_max": round(drift(max(first["fds"]), max(last["fds"])), 1),
            "zombies": [first["zombies"], last["zombies"]],
            "wal_kib": [first["wal_kib"], last["wal_kib"]],
            "db": round(drift(first["db_kib"], last["db_kib"]), 1),
        },
        "db_growth_bytes_per_job": round(
            (last["db_kib"] - first["db_kib"]) * 1024 / jobs_between, 1
        ),
        "samples": samples,
    }
    print(json.dumps({k: v for k, v in summary.items() if k != "samples"}, indent=2))
    results = BENCH / "results"
    results.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = results / f"soak-{stamp}.json"
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"written to {out}")
    lost = counts["completed"] != added or counts["processing"] or counts["failed"]
    shutil.rmtree(work, ignore_errors=True)
    return 1 if lost or any(codes) or summary["integrity_check"] != ["ok"] else 0


if __name__ == "__main__":
    sys.exit(main())
