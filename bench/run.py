"""Side-by-side benchmarks: this checkout against the released statemachine-engine 1.0.91.

Run by `make bench` (never by `make test`). It creates or reuses bench/.venv-released with
the released package from PyPI, measures the physical limits of this machine, then runs every
scenario against both engines, alternating (ours, released, released, ours, ...), and prints
one table: our median, the released median, the ratio, the physical limit and how close we
are to it. The `peers` scenario (bench/peers/) measures our queue against pgqueuer,
procrastinate and huey, each in its own bench/.venv-<peer>, and prints its own tables.
Results go to bench/results/<timestamp>.json and bench/results/latest.json.
docs/performance.md explains the method.

    python bench/run.py [--quick] [--rounds N] [--only SCENARIO,...] [--engines ours,released,...]
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import limits
import peers.scenario
import scenarios
from engines import RELEASED_VERSION, Engine, Ours, Released
from procstat import loadavg

BENCH = Path(__file__).resolve().parent
RELEASED_VENV = BENCH / ".venv-released"
RESULTS = BENCH / "results"
OUR_BIN = Path(sys.executable).parent
ROUNDS_BUDGET_S = 300


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    higher_is_better: bool
    scenario: str


METRICS = [
    Metric("jobs_per_s_log", "1 worker, log action", "jobs/s", True, "throughput_log"),
    Metric("jobs_per_s_bash", "1 worker, bash action", "jobs/s", True, "throughput_bash"),
    Metric("pickup_p50_ms", "enqueue→pickup p50", "ms", False, "pickup"),
    Metric("pickup_p99_ms", "enqueue→pickup p99", "ms", False, "pickup"),
    Metric("event_p50_ms", "machine→machine event p50", "ms", False, "event"),
    Metric("event_p99_ms", "machine→machine event p99", "ms", False, "event"),
    Metric("idle_cpu_pct", "idle CPU, 1 waiting machine", "% core", False, "idle"),
    Metric("rss_mb", "RSS, 1 machine", "MiB", False, "idle"),
    Metric("startup_ms", "start-up to first state", "ms", False, "idle"),
]
METRICS += [
    Metric(
        "timers_idle_cpu_pct",
        "10 schedules, 50 timers: idle CPU",
        "% core",
        False,
        "timers",
    ),
    Metric(
        "timers_idle_cpu_per_machine_pct",
        "10 schedules, 50 timers: per machine",
        "% core",
        False,
        "timers",
    ),
    Metric(
        "timers_idle_cpu_pct_s60",
        "50 timers, --safety-interval 60: CPU",
        "% core",
        False,
        "timers60",
    ),
    Metric(
        "timers_idle_cpu_per_machine_pct_s60",
        "50 timers, --safety-interval 60: each",
        "% core",
        False,
        "timers60",
    ),
]
for _n in (50, 200):
    METRICS += [
        Metric(f"fleet{_n}_rss_mb", f"{_n} machines: total RSS", "MiB", False, f"fleet{_n}"),
        Metric(
            f"fleet{_n}_idle_cpu_pct", f"{_n} machines: idle CPU", "% core", False, f"fleet{_n}"
        ),
        Metric(
            f"fleet{_n}_fanout_p50_ms", f"{_n} machines: fan-out p50", "ms", False, f"fleet{_n}"
        ),
        Metric(
            f"fleet{_n}_fanout_p99_ms", f"{_n} machines: fan-out p99", "ms", False, f"fleet{_n}"
        ),
        Metric(f"fleet{_n}_start_s", f"{_n} machines: start all", "s", False, f"fleet{_n}"),
    ]

SCENARIOS = [
    "throughput_log",
    "throughput_bash",
    "pickup",
    "event",
    "idle",
    "timers",
    "timers60",
    "fleet50",
    "fleet200",
    "peers",
]
ENGINES = ["ours", "released", *peers.scenario.PEER_NAMES, "raw"]
#: Scenarios of features the released package does not have (durable timers, schedules).
OURS_ONLY = {"timers", "timers60"}
#: Run only when named in --only (an explanation of another figure, not a figure to track).
ON_REQUEST = {"timers60"}

# Counts per engine: the released package ticks every 50 ms (500 ms when idle), so it gets
# fewer jobs and samples to keep the whole run under 10 minutes. (quick, full)
COUNTS: dict[str, dict[str, tuple[int | float, int | float]]] = {
    "ours": {
        "jobs_log": (200, 1000),
        "jobs_bash": (50, 300),
        "pickup": (30, 150),
        "event": (30, 150),
        "idle_window": (2.0, 6.0),
        "fleet_window": (2.0, 6.0),
        "fanout_rounds": (1, 3),
        "timer_machines": (10, 50),
        "timer_schedules": (10, 10),
        "timer_window": (3.0, 20.0),
    },
    "released": {
        "jobs_log": (10, 50),
        "jobs_bash": (10, 30),
        "pickup": (10, 30),
        "event": (10, 30),
        "idle_window": (2.0, 6.0),
        "fleet_window": (2.0, 6.0),
        "fanout_rounds": (1, 3),
    },
}

NOTES = {
    "released": [
        "its main loop sleeps 50 ms after every state's actions (500 ms in a state named "
        "`waiting` after 5 s without activity): every latency is quantised by that tick",
        "no wake-up on enqueue: a waiting worker finds jobs on its next poll",
        "its events go by datagram only (no durable row for a machine that is down)",
        "its `log` action returns no event and completes no job: the shared files add "
        "`complete_job`, and `repeatable: true` on the queue check (else it never re-polls)",
    ],
}


# -- released venv --------------------------------------------------------------------------


def released_bin() -> Path:
    """Create or reuse bench/.venv-released with statemachine-engine==1.0.91; its bin dir."""
    bindir = RELEASED_VENV / "bin"
    probe = [
        str(bindir / "python"),
        "-c",
        "import importlib.metadata as m; print(m.version('statemachine-engine'))",
    ]
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        out = subprocess.run(probe, capture_output=True, text=True, check=True).stdout
        if out.strip() == RELEASED_VERSION and (bindir / "statemachine").exists():
            return bindir
    print(f"installing statemachine-engine=={RELEASED_VERSION} into {RELEASED_VENV} ...")
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--clear", str(RELEASED_VENV)], check=True)
    subprocess.run(
        [
            str(bindir / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            f"statemachine-engine=={RELEASED_VERSION}",
        ],
        check=True,
    )
    out = subprocess.run(probe, capture_output=True, text=True, check=True).stdout
    if out.strip() != RELEASED_VERSION:
        raise SystemExit(f"bench: released venv has version {out.strip()!r}")
    return bindir


# -- running ----------------------------------------------------------------------------------


def run_one(
    scenario: str, engine_name: str, quick: bool, rel_bin: Path | None, runtime_dir: str
) -> dict[str, Any]:
    q = 0 if quick else 1
    c = {k: v[q] for k, v in COUNTS[engine_name].items()}
    timeout = 120.0
    with tempfile.TemporaryDirectory(prefix=f"smb-{engine_name[:3]}-", dir="/tmp") as tmp:
        workdir = Path(tmp)
        engine: Engine
        if engine_name == "ours":
            engine = Ours(workdir, OUR_BIN)
        else:
            assert rel_bin is not None
            engine = Released(workdir, rel_bin)
        try:
            if scenario == "throughput_log":
                res = scenarios.throughput(engine, "worker_log.yaml", int(c["jobs_log"]), timeout)
                return {"jobs_per_s_log": res["jobs_per_s"]}
            if scenario == "throughput_bash":
                res = scenarios.throughput(engine, "worker_bash.yaml", int(c["jobs_bash"]), timeout)
                return {"jobs_per_s_bash": res["jobs_per_s"]}
            if scenario == "pickup":
                return scenarios.pickup_latency(engine, int(c["pickup"]), 30)
            if scenario == "event":
                return scenarios.event_latency(engine, int(c["event"]), 30)
            if scenario == "idle":
                return scenarios.idle_machine(engine, float(c["idle_window"]))
            if scenario.startswith("timers"):
                return scenarios.parked_timers(
                    engine,
                    int(c["timer_machines"]),
                    int(c["timer_schedules"]),
                    float(c["timer_window"]) * (1 if scenario == "timers" else 3),
                    batch=10,
                    timeout=timeout,
                    safety_interval=None if scenario == "timers" else 60.0,
                )
            if scenario.startswith("fleet"):
                n = int(scenario[5:])
                return scenarios.fleet(
                    engine,
                    n,
                    float(c["fleet_window"]),
                    int(c["fanout_rounds"]),
                    batch=10,
                    timeout=timeout,
                )
            raise ValueError(scenario)
        finally:
            engine.close()


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def physical_limits(lim: dict[str, Any]) -> dict[str, tuple[float | None, str]]:
    """The limit for each metric, with how it was derived."""
    commit = lim["commits_per_s"]
    one_way = lim["one_way_p50_ms"]
    # Latency scenarios wake a sleeping process: one commit and one datagram after idleness.
    i50 = lim["idle_commit_p50_ms"] + lim["idle_one_way_p50_ms"]
    i99 = lim["idle_commit_p99_ms"] + lim["idle_one_way_p99_ms"]
    out: dict[str, tuple[float | None, str]] = {
        "jobs_per_s_log": (commit, "raw commits/s (one durable commit per job)"),
        "jobs_per_s_bash": (
            min(commit, lim["bash_per_s"]),
            "min(raw commits/s, bash spawns/s)",
        ),
        "pickup_p50_ms": (i50, "one commit + datagram one-way after idleness (p50)"),
        "pickup_p99_ms": (i99, "one commit + datagram one-way after idleness (p99)"),
        "event_p50_ms": (i50, "one commit + datagram one-way after idleness (p50)"),
        "event_p99_ms": (i99, "one commit + datagram one-way after idleness (p99)"),
        "idle_cpu_pct": (0.0, "a blocked process uses none"),
        "rss_mb": (lim["python_rss_mb"], "idle Python interpreter"),
        "startup_ms": (lim["python_startup_p50_ms"], "`python -c pass`"),
    }
    for key in ("timers_idle_cpu_pct", "timers_idle_cpu_per_machine_pct"):
        out[key] = out[key + "_s60"] = (0.0, "none")
    for n in (50, 200):
        out[f"fleet{n}_rss_mb"] = (n * lim["python_rss_mb"], f"{n} x idle interpreter")
        out[f"fleet{n}_idle_cpu_pct"] = (0.0, "none")
        # one transaction stores all n events, then n doorbells go out one after another
        out[f"fleet{n}_fanout_p50_ms"] = (
            lim["idle_commit_p50_ms"] + n / 2 * one_way,
            f"one commit + {n}/2 datagrams",
        )
        out[f"fleet{n}_fanout_p99_ms"] = (
            lim["idle_commit_p99_ms"] + n * one_way,
            f"one commit + {n} datagrams",
        )
        out[f"fleet{n}_start_s"] = (
            n * lim["python_startup_p50_ms"] / 1000 / (os.cpu_count() or 1),
            f"{n} interpreter starts over all cores",
        )
    return out


def reach(ours: float | None, limit: float | None, higher: bool) -> float | None:
    """Fraction of the physical limit reached (1.0 = at the limit)."""
    if ours is None or limit is None or ours <= 0 or limit <= 0:
        return None
    return ours / limit if higher else limit / ours


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny counts: proves the harness works"
    )
    parser.add_argument(
        "--rounds", type=int, default=None, help="rounds per engine (default 3, quick 1)"
    )
    parser.add_argument(
        "--only",
        default="",
        help=f"comma-separated scenarios of {SCENARIOS}; {', '.join(sorted(ON_REQUEST))} "
        "run only when named",
    )
    parser.add_argument(
        "--engines",
        default=",".join(ENGINES),
        help=f"comma-separated of {ENGINES} (raw: the PostgreSQL loop of the peers scenario)",
    )
    args = parser.parse_args()
    rounds = args.rounds or (1 if args.quick else 3)
    only = [s for s in args.only.split(",") if s]
    chosen = [s for s in SCENARIOS if s in only or (not only and s not in ON_REQUEST)]
    wanted = args.engines.split(",")
    engines = [e for e in ("ours", "released") if e in wanted]
    classic = [s for s in chosen if s != "peers"]

    t_begin = time.perf_counter()
    runtime_dir = tempfile.mkdtemp(prefix="smbr", dir="/tmp")
    atexit.register(shutil.rmtree, runtime_dir, ignore_errors=True)
    os.environ["STATEMACHINE_RUNTIME_DIR"] = runtime_dir
    rel_bin = released_bin() if "released" in engines and classic else None
    load_before = loadavg()

    peer_engines = [e for e in ENGINES if e in wanted]
    if not classic:
        peers_report = peers.scenario.run(args.quick, rounds, peer_engines)
        return finish_peers_only(args.quick, rounds, wanted, peers_report, load_before, t_begin)

    print("measuring physical limits ...", flush=True)
    lim_before = limits.measure(args.quick)

    samples: dict[str, dict[str, list[float]]] = {}
    errors: dict[str, dict[str, list[str]]] = {}
    for scenario in classic:
        t0 = time.perf_counter()
        # One round of the fleets (each is many machines and several fan-outs); past the
        # time budget, the remaining scenarios get one round so `make bench` stays < 10 min.
        n_rounds = 1 if scenario.startswith("fleet") or scenario in OURS_ONLY else rounds
        if time.perf_counter() - t_begin > ROUNDS_BUDGET_S:
            n_rounds = 1
        for r in range(n_rounds):
            order = engines if r % 2 == 0 else list(reversed(engines))
            for eng in order:
                if scenario in OURS_ONLY and eng != "ours":
                    continue
                try:
                    res = run_one(scenario, eng, args.quick, rel_bin, runtime_dir)
                except Exception as exc:
                    msg = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
                    errors.setdefault(scenario, {}).setdefault(eng, []).append(msg)
                    if os.environ.get("BENCH_DEBUG"):
                        traceback.print_exc()
                    continue
                for key, value in res.items():
                    samples.setdefault(key, {}).setdefault(eng, []).append(float(value))
        print(f"  {scenario:<16} {time.perf_counter() - t0:6.1f} s", flush=True)

    peers_report = None
    if "peers" in chosen:
        peers_report = peers.scenario.run(args.quick, rounds, peer_engines)

    print("measuring physical limits again ...", flush=True)
    lim_after = limits.measure(args.quick)
    lim = limits.best_of(lim_before, lim_after)

    limit_for = physical_limits(lim)
    rows = []
    results: dict[str, Any] = {}
    for m in METRICS:
        if m.scenario not in chosen:
            continue
        med = {e: statistics.median(v) for e, v in samples.get(m.key, {}).items() if v}
        ours, rel = med.get("ours"), med.get("released")
        ratio = ours / rel if ours is not None and rel else None
        limit, how = limit_for.get(m.key, (None, ""))
        err = errors.get(m.scenario, {})
        results[m.key] = {
            "label": m.label,
            "unit": m.unit,
            "higher_is_better": m.higher_is_better,
            "ours": ours,
            "released": rel,
            "ours_samples": samples.get(m.key, {}).get("ours", []),
            "released_samples": samples.get(m.key, {}).get("released", []),
            "ratio_ours_over_released": ratio,
            "limit": limit,
            "limit_basis": how,
            "reach": reach(ours, limit, m.higher_is_better),
            "errors": err,
        }
        if m.scenario.startswith("fleet"):
            results[m.key]["unobserved"] = samples.get(f"{m.scenario}_unobserved", {})
        rel_cell = fmt(rel) if rel is not None else ("cannot" if "released" in err else "-")
        ours_cell = fmt(ours) if ours is not None else ("FAILED" if "ours" in err else "-")
        rows.append(
            [
                m.label,
                m.unit + (" ↑" if m.higher_is_better else " ↓"),
                ours_cell,
                rel_cell,
                fmt(ratio) + ("x" if ratio is not None else ""),
                fmt(limit),
                fmt(results[m.key]["reach"]),
            ]
        )

    header = ["scenario", "unit", "ours", "released", "ours/rel", "limit", "reach"]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(
            h.ljust(w) if i < 2 else h.rjust(w)
            for i, (h, w) in enumerate(zip(header, widths, strict=True))
        )
    ]
    lines.append("  ".join("-" * w for w in widths))
    for r in rows:
        lines.append(
            "  ".join(
                c.ljust(w) if i < 2 else c.rjust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
        )
    print()
    print(
        f"statemachine-engine benchmarks ({'quick' if args.quick else 'full'}, "
        f"{rounds} round(s), medians)"
    )
    print("\n".join(lines))
    print(
        "↑ higher is better, ↓ lower is better; reach = fraction of the physical limit (1 = at it)"
    )
    for key, by_engine in samples.items():
        if key.endswith("_unobserved"):
            for eng, values in by_engine.items():
                if any(values):
                    print(
                        f"! {key[: -len('_unobserved')]} / {eng}: {int(sum(values))} machine "
                        "transition(s) never reported (left out of the fan-out figures)"
                    )
    for scenario, by_engine in errors.items():
        for eng, msgs in by_engine.items():
            print(f"! {scenario} / {eng}: {len(msgs)} failed round(s): {msgs[0]}")
    print(
        f"limits: {fmt(lim['commits_per_s'])} raw commits/s (WAL, synchronous=FULL, p50 "
        f"{fmt(lim['commit_p50_ms'])} ms; after idleness p50 {fmt(lim['idle_commit_p50_ms'])} "
        f"ms), datagram RTT p50 {fmt(lim['rtt_p50_ms'])} ms (one-way after idleness "
        f"{fmt(lim['idle_one_way_p50_ms'])} ms), "
        f"bash -c true {fmt(lim['bash_p50_ms'])} ms, python -c pass "
        f"{fmt(lim['python_startup_p50_ms'])} ms, idle python {fmt(lim['python_rss_mb'])} MiB"
    )
    elapsed = time.perf_counter() - t_begin
    load_after = loadavg()
    print(
        f"load average before/after: {load_before[0]:.2f} / {load_after[0]:.2f}; "
        f"took {elapsed:.0f} s"
    )

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    report = {
        "timestamp": stamp,
        "quick": args.quick,
        "rounds": rounds,
        "scenarios": chosen,
        "engines": engines,
        "peers": peers_report,
        "released_version": RELEASED_VERSION,
        "host": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "loadavg_before": load_before,
            "loadavg_after": load_after,
        },
        "counts": {
            e: {k: v[0 if args.quick else 1] for k, v in COUNTS[e].items()} for e in engines
        },
        "limits": lim,
        "limits_before": lim_before,
        "limits_after": lim_after,
        "results": results,
        "notes": NOTES,
        "elapsed_s": elapsed,
    }
    RESULTS.mkdir(exist_ok=True)
    text = json.dumps(report, indent=2, ensure_ascii=False)
    (RESULTS / f"{stamp}.json").write_text(text)
    (RESULTS / "latest.json").write_text(text)
    print(f"wrote {RESULTS / (stamp + '.json')}")
    return 1 if any("ours" in e for e in errors.values()) or peers_failed(peers_report) else 0


def peers_failed(report: dict[str, Any] | None) -> bool:
    return report is not None and any("/ours/" in k for k in report["errors"])


def finish_peers_only(
    quick: bool,
    rounds: int,
    engines: list[str],
    report: dict[str, Any] | None,
    load_before: tuple[float, float, float],
    t_begin: float,
) -> int:
    """`--only peers`: the load average, then the JSON report (no limits, no main table)."""
    elapsed = time.perf_counter() - t_begin
    load_after = loadavg()
    print(
        f"load average before/after: {load_before[0]:.2f} / {load_after[0]:.2f}; "
        f"took {elapsed:.0f} s"
    )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    data = {
        "timestamp": stamp,
        "quick": quick,
        "rounds": rounds,
        "scenarios": ["peers"],
        "engines": engines,
        "host": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "loadavg_before": load_before,
            "loadavg_after": load_after,
        },
        "peers": report,
        "elapsed_s": elapsed,
    }
    RESULTS.mkdir(exist_ok=True)
    text = json.dumps(data, indent=2, ensure_ascii=False)
    (RESULTS / f"{stamp}-peers.json").write_text(text)
    (RESULTS / "peers_latest.json").write_text(text)
    print(f"wrote {RESULTS / (stamp + '-peers.json')}")
    return 1 if peers_failed(report) else 0


if __name__ == "__main__":
    sys.exit(main())
