"""The benchmark scenarios; each runs against one engine driver and returns its figures."""

from __future__ import annotations

import itertools
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engines import BenchError, Engine, Machine, Transition
from limits import pct
from procstat import cpu_seconds, rss_bytes

SCENARIO_DIR = Path(__file__).parent / "machines"
_names = itertools.count()


def unique_name(tag: str) -> str:
    # The released package's control sockets live in /tmp under the bare machine name.
    return f"smb{os.getpid()}-{tag}-{next(_names)}"


def drain(engine: Engine) -> None:
    """Forget every transition recorded so far."""
    engine.new_transitions()
    _backlog.pop(id(engine), None)


_backlog: dict[int, list[Transition]] = {}


def wait_for(
    engine: Engine,
    match: Callable[[Transition], bool],
    count: int,
    timeout: float,
    machines: list[Machine],
    at_least: int | None = None,
    quiet: float = 5.0,
) -> list[Transition]:
    """Take `count` transitions that satisfy `match`, polling every 2 ms. Transitions that do
    not match stay in a backlog for the next call (until `drain`). With `at_least`, return
    early with fewer once `at_least` were seen and nothing new matched for `quiet` seconds."""
    backlog = _backlog.setdefault(id(engine), [])
    found: list[Transition] = []
    deadline = time.monotonic() + timeout
    last_match = time.monotonic()
    while True:
        backlog.extend(engine.new_transitions())
        keep = []
        for t in backlog:
            if len(found) < count and match(t):
                found.append(t)
                last_match = time.monotonic()
            else:
                keep.append(t)
        backlog[:] = keep
        if len(found) >= count:
            return found
        if (
            at_least is not None
            and len(found) >= at_least
            and time.monotonic() - last_match > quiet
        ):
            return found
        if time.monotonic() > deadline:
            for m in machines:
                m.check_alive()
            raise BenchError(f"only {len(found)} of {count} transitions within {timeout:.0f} s")
        time.sleep(0.002)


def throughput(engine: Engine, config: str, jobs: int, timeout: float) -> dict[str, float]:
    """Jobs per second of one worker draining a pre-filled queue (harness clock)."""
    engine.enqueue("bench", jobs)
    worker = engine.start(SCENARIO_DIR / config, unique_name("tp"))
    engine.wait_ready(worker)
    deadline = time.monotonic() + timeout
    first = None
    done = 0
    while done < jobs:
        done = engine.completed("bench")
        now = time.perf_counter()
        if first is None and done >= 1:
            first, first_done = now, done
        if time.monotonic() > deadline:
            worker.check_alive()
            raise BenchError(f"{done} of {jobs} jobs done within {timeout:.0f} s")
        time.sleep(0.01)
    engine.stop([worker])
    assert first is not None
    elapsed = time.perf_counter() - first
    if elapsed <= 0 or jobs - first_done < 2:
        raise BenchError("too few jobs to time; raise the job count")
    return {"jobs_per_s": (jobs - first_done) / elapsed}


def pickup_latency(engine: Engine, samples: int, timeout: float) -> dict[str, float]:
    """Enqueue one job at a time to a waiting worker: commit of the job → worker's transition
    to `processing` (engine timestamp)."""
    worker = engine.start(SCENARIO_DIR / "worker_log.yaml", unique_name("pick"))
    engine.wait_ready(worker)
    time.sleep(0.5)
    drain(engine)
    lat = []
    for _ in range(samples):
        time.sleep(random.uniform(0.01, 0.06))
        t0 = engine.enqueue("bench", 1)
        (got,) = wait_for(engine, lambda t: t.to_state == "processing", 1, timeout, [worker])
        lat.append((got.at - t0) * 1000)
        wait_for(engine, lambda t: t.to_state == "waiting", 1, timeout, [worker])
    engine.stop([worker])
    return {"pickup_p50_ms": pct(lat, 50), "pickup_p99_ms": pct(lat, 99)}


def event_latency(engine: Engine, samples: int, timeout: float) -> dict[str, float]:
    """A sender machine's `send_event` → the receiver's transition on it. Measured from the
    sender's transition out of `sending` (recorded right after the event is sent/committed)
    to the receiver's transition on `ping`, both engine timestamps."""
    receiver = engine.start(SCENARIO_DIR / "idle_worker.yaml", unique_name("recv"))
    sender = engine.start(
        SCENARIO_DIR / "sender.yaml", unique_name("send"), {"receiver": receiver.name}
    )
    both = [receiver, sender]
    engine.wait_ready(receiver)
    engine.wait_ready(sender)
    time.sleep(0.5)
    drain(engine)
    lat = []
    for _ in range(samples):
        time.sleep(random.uniform(0.01, 0.06))
        engine.enqueue("bench_ping", 1)
        seen = wait_for(
            engine,
            lambda t: (
                (t.machine == sender.name and t.from_state == "sending")
                or (t.machine == receiver.name and t.to_state == "pinged")
            ),
            2,
            timeout,
            both,
        )
        sent = next(t.at for t in seen if t.machine == sender.name)
        received = next(t.at for t in seen if t.machine == receiver.name)
        lat.append((received - sent) * 1000)
        wait_for(
            engine,
            lambda t: t.machine == receiver.name and t.to_state == "waiting",
            1,
            timeout,
            both,
        )
    engine.stop(both)
    return {"event_p50_ms": pct(lat, 50), "event_p99_ms": pct(lat, 99)}


def idle_machine(engine: Engine, window: float) -> dict[str, float]:
    """One idle worker: start-up time to its first state, idle CPU and RSS."""
    m = engine.start(SCENARIO_DIR / "idle_worker.yaml", unique_name("idle"))
    ready = engine.wait_ready(m)
    startup_ms = (ready - m.spawn_at) * 1000
    time.sleep(1.0)
    c0, t0 = cpu_seconds(m.pid), time.perf_counter()
    time.sleep(window)
    c1, t1 = cpu_seconds(m.pid), time.perf_counter()
    rss = rss_bytes(m.pid)
    m.check_alive()
    engine.stop([m])
    return {
        "startup_ms": startup_ms,
        "idle_cpu_pct": (c1 - c0) / (t1 - t0) * 100,
        "rss_mb": rss / 2**20,
    }


def fleet(
    engine: Engine, n: int, window: float, rounds: int, batch: int, timeout: float
) -> dict[str, Any]:
    """N idle workers on this host: total RSS, total idle CPU, event fan-out latency (one
    `ping` sent to every machine → each machine's transition, engine timestamps)."""
    config = SCENARIO_DIR / "idle_worker.yaml"
    machines: list[Machine] = []
    t_start = time.perf_counter()
    try:
        for first in range(0, n, batch):
            group = [
                engine.start(config, unique_name(f"f{n}"))
                for _ in range(first, min(n, first + batch))
            ]
            for m in group:
                engine.wait_ready(m, timeout=timeout)
            machines.extend(group)
        start_all_s = time.perf_counter() - t_start
        time.sleep(2.0)
        pids = [m.pid for m in machines]
        c0, t0 = sum(cpu_seconds(p) for p in pids), time.perf_counter()
        time.sleep(window)
        c1, t1 = sum(cpu_seconds(p) for p in pids), time.perf_counter()
        rss = sum(rss_bytes(p) for p in pids)
        names = {m.name for m in machines}
        lat: list[float] = []
        # The released package loses a state change now and then with 200 machines (its
        # event socket queue is full and the database fallback times out on the lock), so up
        # to 2 % of machines may go unobserved per round; they are counted as `unobserved`.
        at_least = n - max(1, n // 50)
        unobserved = 0
        for _ in range(rounds):
            time.sleep(1.0)
            drain(engine)
            sent = engine.send_events(sorted(names), "ping")
            got = wait_for(
                engine,
                lambda t: t.machine in names and t.to_state == "pinged",
                n,
                timeout,
                machines,
                at_least=at_least,
            )
            unobserved += n - len(got)
            lat.extend((t.at - sent) * 1000 for t in got)
            wait_for(
                engine,
                lambda t: t.machine in names and t.to_state == "waiting",
                n,
                timeout,
                machines,
                at_least=at_least,
            )
        for m in machines:
            m.check_alive()
    finally:
        engine.stop(machines)
    idle_cpu = (c1 - c0) / (t1 - t0) * 100
    return {
        f"fleet{n}_rss_mb": rss / 2**20,
        f"fleet{n}_idle_cpu_pct": idle_cpu,
        f"fleet{n}_fanout_p50_ms": pct(lat, 50),
        f"fleet{n}_fanout_p99_ms": pct(lat, 99),
        f"fleet{n}_fanout_max_ms": max(lat),
        f"fleet{n}_start_s": start_all_s,
        f"fleet{n}_unobserved": unobserved,
    }


def parked_timers(
    engine: Engine,
    machines_n: int,
    schedules_n: int,
    window: float,
    batch: int,
    timeout: float,
    safety_interval: float | None = None,
) -> dict[str, Any]:
    """Idle CPU of `machines_n` machines, each parked in a state with an armed
    `timeout(3600)` (one machine per process, one armed timer per machine), on a database
    holding `schedules_n` schedules whose ticks are far from the window (yearly cron, 1 January),
    so every process looks at the schedules at each safety re-check and none fires. Ours only:
    the released package has neither durable timers nor schedules. With `safety_interval`
    the machines run with that `--safety-interval` and the figures' keys end in `_s<N>`."""
    store = getattr(engine, "store", None)
    extra = engine.extra_args
    if store is None:
        raise BenchError("no schedules in this engine")
    suffix = ""
    if safety_interval is not None:
        extra += ["--safety-interval", f"{safety_interval:g}"]
        suffix = f"_s{safety_interval:g}"
    from statemachine_engine.database import ScheduleSpec, Timing

    for n in range(schedules_n):
        timing = Timing(cron=f"{n} 0 1 1 *")
        store.put_schedule(ScheduleSpec(f"bench-yearly-{n}", "bench_never", timing))
    config = SCENARIO_DIR / "timer_worker.yaml"
    machines: list[Machine] = []
    try:
        for first in range(0, machines_n, batch):
            group = [
                engine.start(config, unique_name("tmr"))
                for _ in range(first, min(machines_n, first + batch))
            ]
            for m in group:
                engine.wait_ready(m, timeout=timeout)
            machines.extend(group)
        time.sleep(2.0)
        pids = [m.pid for m in machines]
        c0, t0 = sum(cpu_seconds(p) for p in pids), time.perf_counter()
        time.sleep(window)
        c1, t1 = sum(cpu_seconds(p) for p in pids), time.perf_counter()
        for m in machines:
            m.check_alive()
        fired = sum(store.count_jobs(job_type="bench_never").values())
        if fired:
            raise BenchError(f"{fired} schedule tick(s) fired during the window")
    finally:
        engine.stop(machines)
    total = (c1 - c0) / (t1 - t0) * 100
    return {
        f"timers_idle_cpu_pct{suffix}": total,
        f"timers_idle_cpu_per_machine_pct{suffix}": total / machines_n,
    }
