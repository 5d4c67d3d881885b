"""The peers scenario: drain throughput with 1, 4 and 8 worker processes and enqueue
throughput, for our queue and its peers, rounds interleaved, medians, one table per backend.

Called by bench/run.py (`--only peers`); `run()` prints the tables and returns the report.
"""

from __future__ import annotations

import statistics
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peers import venvs
from peers.systems import (
    Huey,
    OursPg,
    OursSqlite,
    PeerError,
    Pgqueuer,
    Procrastinate,
    RawPg,
    System,
    wait_for,
)

WORKERS = (1, 4, 8)
PEER_NAMES = ("pgqueuer", "procrastinate", "huey")
BACKENDS = {"postgresql": ("ours", "pgqueuer", "procrastinate"), "sqlite": ("ours", "huey")}
SETTLE_S = 0.5
ENQUEUE_KEYS = ("enqueue_single", "enqueue_bulk")
ROWS = [(f"drain_{n}", f"drain, {n} worker{'s' if n > 1 else ''}") for n in WORKERS] + [
    ("enqueue_single", "enqueue, 1 job per transaction"),
    ("enqueue_bulk", "enqueue, bulk"),
]
LIMIT_NOTE = {
    "drain": "raw psycopg loop, claim + complete as two transactions per job, same processes",
    "enqueue_single": "raw psycopg INSERT, one per transaction",
}


@dataclass(frozen=True)
class Counts:
    drain: int
    single: int
    bulk: int
    batch: int


QUICK = Counts(drain=150, single=30, bulk=300, batch=100)
FULL = Counts(drain=2000, single=500, bulk=5000, batch=1000)


def make(name: str, backend: str, workdir: Path, bins: dict[str, Path]) -> System:
    if name == "ours":
        return OursPg(workdir) if backend == "postgresql" else OursSqlite(workdir)
    if name == "pgqueuer":
        return Pgqueuer(workdir, bins[name])
    if name == "procrastinate":
        return Procrastinate(workdir, bins[name])
    if name == "huey":
        return Huey(workdir, bins[name])
    raise ValueError(name)


def drain(system: System, workers: int, jobs: int) -> float:
    """Jobs/s while `workers` processes empty a queue of `jobs` no-op jobs.

    Workers are started and idle first; the jobs are then queued in one call, and the time
    runs from their commit to the last completion (polled every 10 ms). huey, whose queue is
    filled before its consumer starts, is timed from the first completion seen instead."""
    system.setup()
    if system.fill_before_workers:
        system.fill(jobs)
    system.start_workers(workers)
    committed = None
    if not system.fill_before_workers:
        system.wait_ready(workers)
        time.sleep(SETTLE_S)
        committed = system.fill(jobs)
    first: tuple[float, int] | None = None

    def done() -> bool:
        nonlocal first
        system.check_alive()
        count = system.completed(jobs)
        if first is None and count > 0:
            first = (time.time(), count)
        return count >= jobs

    wait_for(done, 300, f"{system.name}: {jobs} jobs drained by {workers} worker(s)")
    finished = time.time()
    assert first is not None
    start, already = (committed, 0) if committed is not None else first
    if already >= jobs:
        raise PeerError(f"{system.name}: drained between two polls; raise the job count")
    return (jobs - already) / (finished - start)


def drain_work(
    name: str, backend: str, bins: dict[str, Path], workers: int, counts: Counts
) -> Callable[[Path], float | None]:
    def work(tmp: Path) -> float:
        if name == "raw":
            raw = RawPg(tmp)
            try:
                raw.setup()
                return raw.drain(workers, counts.drain)
            finally:
                raw.close()
        system = make(name, backend, tmp, bins)
        try:
            return drain(system, workers, counts.drain)
        finally:
            system.close()

    return work


def enqueue_work(
    name: str, backend: str, bins: dict[str, Path], key: str, counts: Counts
) -> Callable[[Path], float | None]:
    """Single: `counts.single` jobs, one per transaction; bulk: `counts.bulk` in batches."""

    def work(tmp: Path) -> float | None:
        system = RawPg(tmp) if name == "raw" else make(name, backend, tmp, bins)
        try:
            system.setup()
            if key == "enqueue_single":
                return system.enqueue_single(counts.single)
            return system.enqueue_bulk(counts.bulk, counts.batch)
        finally:
            system.close()

    return work


def orders(names: list[str], rounds: int) -> list[list[str]]:
    """Round r: the list rotated by r, reversed on odd rounds (so no system always goes first)."""
    out = []
    for r in range(rounds):
        k = r % len(names)
        rotated = names[k:] + names[:k]
        out.append(rotated if r % 2 == 0 else list(reversed(rotated)))
    return out


def run(quick: bool, rounds: int, engines: list[str]) -> dict[str, Any]:
    """Measure, print the tables, return the report (samples, medians, versions)."""
    counts = QUICK if quick else FULL
    peers = [p for p in PEER_NAMES if p in engines]
    bins = {p: venvs.ensure(p) for p in peers}
    versions = {p: venvs.installed_version(p) or "?" for p in peers}
    samples: dict[str, dict[str, dict[str, list[float]]]] = {}
    errors: dict[str, list[str]] = {}

    def record(backend: str, name: str, key: str, work: Callable[[Path], float | None]) -> None:
        with tempfile.TemporaryDirectory(prefix=f"peers-{name[:4]}-", dir="/tmp") as tmp:
            try:
                value = work(Path(tmp))
            except Exception as exc:
                msg = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
                errors.setdefault(f"{backend}/{name}/{key}", []).append(msg)
                traceback.print_exc()
                return
        if value is not None:
            samples.setdefault(backend, {}).setdefault(key, {}).setdefault(name, []).append(value)

    for backend, all_names in BACKENDS.items():
        names = [n for n in all_names if (n == "ours" and "ours" in engines) or n in peers]
        if backend == "postgresql" and "raw" in engines:
            names.append("raw")
        for workers in WORKERS:
            t0 = time.perf_counter()
            for order in orders(names, rounds):
                for name in order:
                    record(
                        backend,
                        name,
                        f"drain_{workers}",
                        drain_work(name, backend, bins, workers, counts),
                    )
            print(
                f"  peers {backend:<10} {workers} worker(s) {time.perf_counter() - t0:6.1f} s",
                flush=True,
            )
        t0 = time.perf_counter()
        for order in orders(names, rounds):
            for name in order:
                for key in ENQUEUE_KEYS:
                    record(backend, name, key, enqueue_work(name, backend, bins, key, counts))
        print(f"  peers {backend:<10} enqueue     {time.perf_counter() - t0:6.1f} s", flush=True)

    medians = {
        backend: {
            key: {name: statistics.median(v) for name, v in by_name.items() if v}
            for key, by_name in by_key.items()
        }
        for backend, by_key in samples.items()
    }
    report = {
        "versions": versions,
        "pins": {p: list(venvs.PINS[p]) for p in peers},
        "counts": counts.__dict__,
        "rounds": rounds,
        "samples": samples,
        "medians": medians,
        "errors": errors,
    }
    print_tables(report, quick)
    return report


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def render(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, ["-" * w for w in widths], *rows]:
        cells = [
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells))
    return "\n".join(lines)


def print_tables(report: dict[str, Any], quick: bool) -> None:
    """One table per backend: medians, the best peer, our ratio to it, the limit, reach."""
    print()
    print(
        f"peers ({'quick' if quick else 'full'}, {report['rounds']} round(s), medians, jobs/s; "
        + ", ".join(f"{p} {v}" for p, v in report["versions"].items())
        + ")"
    )
    for backend, names in BACKENDS.items():
        med = report["medians"].get(backend, {})
        shown = [n for n in names if any(n in by_name for by_name in med.values())]
        if not shown:
            continue
        peers = [n for n in shown if n != "ours"]
        has_limit = backend == "postgresql" and any("raw" in by_name for by_name in med.values())
        header = ["figure", *shown, "best peer", "ours/best"]
        if has_limit:
            header += ["limit", *(f"{n} reach" for n in shown)]
        rows = []
        for key, label in ROWS:
            values = med.get(key, {})
            best = max(((values[p], p) for p in peers if values.get(p) is not None), default=None)
            ours = values.get("ours")
            ratio = ours / best[0] if ours is not None and best is not None else None
            row = [label, *(fmt(values.get(n)) for n in shown)]
            row += [f"{best[1]}" if best else "-", fmt(ratio) + ("x" if ratio else "")]
            if has_limit:
                limit = values.get("raw")
                row.append(fmt(limit))
                for n in shown:
                    v = values.get(n)
                    row.append(fmt(v / limit) if v is not None and limit else "-")
            rows.append(row)
        print()
        print(f"{backend}:")
        print(render(header, rows))
        if has_limit:
            print(
                "limit: drain = "
                + LIMIT_NOTE["drain"]
                + "; enqueue = "
                + LIMIT_NOTE["enqueue_single"]
            )
    for where, msgs in report["errors"].items():
        print(f"! peers {where}: {len(msgs)} failed round(s): {msgs[0]}")
