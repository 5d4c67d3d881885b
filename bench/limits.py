"""Physical limits of this machine: what no engine written in Python on it can beat.

- raw SQLite commits: one-row `BEGIN IMMEDIATE; INSERT; COMMIT` transactions through apsw
  with the store's durability settings (WAL, synchronous=FULL), one connection, one process;
- the same commit and round trip after 10-60 ms of idleness (as in the latency scenarios,
  where the work arrives at a sleeping process: an idle disk and CPU answer slower than a
  busy one on this kind of machine);
- Unix datagram round trip between two Python processes (one-way = half of it);
- spawning `bash -c true` from Python and waiting for it;
- Python interpreter start-up (`python -c pass`, the venv's interpreter with `site`);
- resident memory of an idle Python interpreter.
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import apsw
from procstat import rss_bytes

_ECHO = """
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("ready", flush=True)
while True:
    data, addr = s.recvfrom(65536)
    if data == b"quit":
        break
    s.sendto(data, addr)
"""


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def _idle_gap() -> None:
    time.sleep(random.uniform(0.01, 0.06))


def raw_commits(workdir: Path, n: int, *, gaps: bool = False) -> dict[str, float]:
    db = apsw.Connection(str(workdir / f"raw{int(gaps)}.db"))
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, at REAL)")
    lat: list[float] = []
    start = time.perf_counter()
    for i in range(n):
        if gaps:
            _idle_gap()
        t0 = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t (v, at) VALUES (?, ?)", (f"row {i}", time.time()))
        db.execute("COMMIT")
        lat.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - start
    db.close()
    if gaps:
        return {
            "idle_commit_p50_ms": pct(lat, 50) * 1000,
            "idle_commit_p99_ms": pct(lat, 99) * 1000,
        }
    return {
        "commits_per_s": n / elapsed,
        "commit_p50_ms": pct(lat, 50) * 1000,
        "commit_p99_ms": pct(lat, 99) * 1000,
    }


def dgram_round_trip(workdir: Path, n: int, *, gaps: bool = False) -> dict[str, float]:
    server_path = workdir / f"echo{int(gaps)}.sock"
    client_path = workdir / f"client{int(gaps)}.sock"
    proc = subprocess.Popen(
        [sys.executable, "-c", _ECHO, str(server_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        proc.stdout.readline()
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.bind(str(client_path))
            sock.settimeout(5)
            lat: list[float] = []
            for i in range(n + 50):
                if gaps:
                    _idle_gap()
                t0 = time.perf_counter()
                sock.sendto(b'{"kind":"event","n":%d}' % i, str(server_path))
                sock.recv(65536)
                if i >= 50:  # warm-up
                    lat.append(time.perf_counter() - t0)
            sock.sendto(b"quit", str(server_path))
    finally:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if gaps:
        return {
            "idle_one_way_p50_ms": pct(lat, 50) * 500,
            "idle_one_way_p99_ms": pct(lat, 99) * 500,
        }
    return {
        "rtt_p50_ms": pct(lat, 50) * 1000,
        "rtt_p99_ms": pct(lat, 99) * 1000,
        "one_way_p50_ms": pct(lat, 50) * 500,
        "one_way_p99_ms": pct(lat, 99) * 500,
    }


def _spawn_times(argv: list[str], n: int) -> list[float]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return times


def bash_spawn(n: int) -> dict[str, float]:
    times = _spawn_times(["bash", "-c", "true"], n)
    return {"bash_p50_ms": pct(times, 50) * 1000, "bash_per_s": 1 / statistics.mean(times)}


def python_startup(n: int) -> dict[str, float]:
    times = _spawn_times([sys.executable, "-c", "pass"], n)
    return {"python_startup_p50_ms": pct(times, 50) * 1000}


def python_rss() -> dict[str, float]:
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; print(1, flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        proc.stdout.readline()
        time.sleep(0.2)
        rss = rss_bytes(proc.pid)
    finally:
        proc.kill()
        proc.wait()
    return {"python_rss_mb": rss / 2**20}


def measure(quick: bool) -> dict[str, Any]:
    n_commit = 300 if quick else 3000
    n_rtt = 300 if quick else 3000
    n_spawn = 20 if quick else 100
    with tempfile.TemporaryDirectory(prefix="smbl", dir="/tmp") as tmp:
        workdir = Path(tmp)
        out: dict[str, Any] = {}
        out.update(raw_commits(workdir, n_commit))
        out.update(dgram_round_trip(workdir, n_rtt))
        n_idle = 15 if quick else 60
        out.update(raw_commits(workdir, n_idle, gaps=True))
        out.update(dgram_round_trip(workdir, n_idle, gaps=True))
        out.update(bash_spawn(n_spawn))
        out.update(python_startup(n_spawn))
        out.update(python_rss())
    out["sqlite_version"] = apsw.sqlite_lib_version()
    out["cpus"] = os.cpu_count()
    return out


_HIGHER_IS_BETTER = {"commits_per_s", "bash_per_s"}


def best_of(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """Combine two measurements: the machine can do at least the better of the two."""
    out = dict(first)
    for key, value in second.items():
        a = first.get(key)
        if isinstance(value, float) and isinstance(a, float):
            out[key] = max(a, value) if key in _HIGHER_IS_BETTER else min(a, value)
    return out
