"""State-change-to-browser latency of statemachine-ui: p50/p99 with N machines changing state.

Starts `statemachine-ui` on a temporary SQLite file, runs N machines in this process that
flip between two states every `--period` seconds, opens the page in headless Chromium and
reads, for every state change the page applied, the time from the commit (`created_at` of
the stream row) to the moment the page updated the machine's row (same host, same clock).

    python bench/ui_latency.py [--machines 50] [--seconds 10] [--period 0.2 | --rate 25]
                               [--no-doorbell]

It also reports what the page costs while the changes stream in: the CPU time of the tab's
renderer process as a share of one core (`page_cpu_of_a_core`; what `top` would show) and
how busy its main thread was (Chrome's task accounting, which counts waiting for a CPU on a
loaded host as busy), and, for a second page opened while
the machines run, the first contentful paint and the first useful paint (every machine row
on screen), both from the start of navigation.

`--no-doorbell` drops every doorbell (STATEMACHINE_FAULT_NO_DOORBELL=1), so the UI only sees
changes through its 250 ms fallback tail: the number to compare against.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from statemachine_engine.config.loader import parse_definition
from statemachine_engine.core import ActionLoader, StateMachineEngine
from statemachine_engine.database.sqlite import SQLiteStore

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
RESULTS = Path(__file__).resolve().parent / "results"

FLIPPER = """\
name: Flipper
initial_state: red
states: [red, green]
events: [flip]
actions:
  red:
    - {{type: sleep, seconds: {period}, success: flip}}
  green:
    - {{type: sleep, seconds: {period}, success: flip}}
transitions:
  - {{from: red, to: green, event: flip}}
  - {{from: green, to: red, event: flip}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def until(page: Any, predicate: str, timeout: float = 30.0) -> None:
    """Poll a page predicate (the page's CSP forbids Playwright's string predicates)."""
    deadline = time.monotonic() + timeout
    while not await page.evaluate(predicate):
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {predicate}")
        await asyncio.sleep(0.05)


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    workdir = Path(tempfile.mkdtemp(prefix="ui-bench-"))
    os.environ["STATEMACHINE_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="smb", dir="/tmp")
    if args.no_doorbell:
        os.environ["STATEMACHINE_FAULT_NO_DOORBELL"] = "1"
    db_file = workdir / "bench.db"
    store = SQLiteStore(str(db_file))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    ui_bin = Path(sys.executable).parent / "statemachine-ui"
    server = subprocess.Popen(
        [str(ui_bin), "--db", f"sqlite:///{db_file}", "--port", str(port)],
        stderr=subprocess.DEVNULL,
    )
    engines: list[StateMachineEngine] = []
    tasks: list[asyncio.Task[int]] = []
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{url}/api/health", timeout=1).is_success:
                    break
            except httpx.HTTPError:
                await asyncio.sleep(0.05)
            if time.monotonic() > deadline:
                raise SystemExit("statemachine-ui did not start")
        loader = ActionLoader()
        definition = parse_definition(FLIPPER.format(period=args.period), "flip.yaml", loader)
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = await browser.new_page(viewport={"width": 1400, "height": 900})
            await page.goto(url + "/")
            await until(page, "() => window.smStats && window.smStats.connected")
            for i in range(args.machines):
                engine = StateMachineEngine(definition, f"flip-{i:03d}", store=store, loader=loader)
                engines.append(engine)
                tasks.append(asyncio.create_task(engine.run()))
            await until(
                page,
                f"() => document.querySelectorAll('#machines tbody tr').length >= {args.machines}",
            )
            await page.evaluate("window.smStats.applied = []")
            cdp = await page.context.new_cdp_session(page)
            await cdp.send("Performance.enable")
            system = await browser.new_browser_cdp_session()
            busy_before = await task_seconds(cdp)
            cpu_before = await renderer_cpu(system)
            started = time.monotonic()
            await asyncio.sleep(args.seconds)
            busy = await task_seconds(cdp) - busy_before
            elapsed = time.monotonic() - started
            page_cpu = (await renderer_cpu(system) - cpu_before) / elapsed
            applied = await page.evaluate("window.smStats.applied")
            paints = await first_paints(browser, url, args.machines)
            await browser.close()
    finally:
        for engine in engines:
            engine.stop()
        if tasks:
            await asyncio.wait(tasks, timeout=10)
        server.terminate()
        server.wait(10)
        store.close()
    latencies = [(a["applied"] - a["created"]) * 1000 for a in applied]
    transport = [(a["received"] - a["created"]) * 1000 for a in applied]
    if not latencies:
        raise SystemExit("the page applied no state change")
    return {
        "machines": args.machines,
        "seconds": args.seconds,
        "period_s": args.period,
        "doorbell": not args.no_doorbell,
        "state_changes_seen": len(latencies),
        "changes_per_s": round(len(latencies) / args.seconds, 1),
        "p50_ms": round(percentile(latencies, 0.50), 1),
        "p90_ms": round(percentile(latencies, 0.90), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
        "max_ms": round(max(latencies), 1),
        "mean_ms": round(statistics.fmean(latencies), 1),
        "p50_to_socket_ms": round(percentile(transport, 0.50), 1),
        "p99_to_socket_ms": round(percentile(transport, 0.99), 1),
        "under_100ms": round(sum(1 for x in latencies if x < 100) / len(latencies), 4),
        "page_cpu_of_a_core": round(page_cpu, 3),
        "page_main_thread_busy": round(busy / elapsed, 3),
        **paints,
        "cpu_count": os.cpu_count(),
    }


async def task_seconds(cdp: Any) -> float:
    """Seconds the page's main thread has spent running tasks (script, style, layout, paint)."""
    metrics = (await cdp.send("Performance.getMetrics"))["metrics"]
    return float(next(m["value"] for m in metrics if m["name"] == "TaskDuration"))


async def renderer_cpu(system: Any) -> float:
    """CPU seconds used so far by the browser's renderer processes (the page's tab)."""
    info = await system.send("SystemInfo.getProcessInfo")
    return sum(p["cpuTime"] for p in info["processInfo"] if p["type"] == "renderer")


async def first_paints(browser: Any, url: str, machines: int) -> dict[str, float]:
    """A fresh page while the machines run: first contentful paint, and when every machine
    row was on screen (polled every 5 ms), in ms from the start of navigation."""
    page = await browser.new_page(viewport={"width": 1400, "height": 900})
    await page.goto(url + "/", wait_until="commit")
    rows = f"document.querySelectorAll('#machines tbody tr').length >= {machines}"
    deadline = time.monotonic() + 30
    useful = None
    while useful is None:
        useful = await page.evaluate(f"{rows} ? performance.now() : null")
        if time.monotonic() > deadline:
            raise SystemExit("the second page never showed every machine")
        await asyncio.sleep(0.005)
    fcp = await page.evaluate(
        "(performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime || null"
    )
    await page.close()
    return {
        "first_contentful_paint_ms": round(fcp or 0.0, 1),
        "first_useful_paint_ms": round(useful, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--period", type=float, default=0.2)
    parser.add_argument(
        "--rate", type=float, help="state changes per second in all (sets --period)"
    )
    parser.add_argument("--no-doorbell", action="store_true")
    args = parser.parse_args()
    if args.rate:
        args.period = args.machines / args.rate
    result = asyncio.run(measure(args))
    RESULTS.mkdir(exist_ok=True)
    name = "ui_latency_no_doorbell.json" if args.no_doorbell else "ui_latency.json"
    (RESULTS / name).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
