"""Take the health and groups screenshots of docs/ui.md in Debian's headless Chromium.

    PYTHONPATH=src .venv/bin/python scripts/ui_screenshots.py [--out docs/images]

Seeds a SQLite file in a temporary folder: three machine processes (one killed with
SIGKILL), failed and delayed jobs, an unhandled event, and a 33-state machine with five
groups; runs `statemachine-ui` on a free port and saves ui-health.png and ui-groups.png.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from statemachine_engine.config.loader import parse_definition
from statemachine_engine.core import ActionLoader
from statemachine_engine.database.liveness import process_start, this_host
from statemachine_engine.database.records import Step
from statemachine_engine.database.sqlite import SQLiteStore

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CHROMIUM = os.environ.get("STATEMACHINE_TEST_CHROMIUM", "/usr/bin/chromium")
PIPELINE = ROOT / "tests" / "ui" / "definitions" / "pipeline33.yaml"
IDLE = """\
name: Worker
initial_state: waiting
states: [waiting, done]
events: [stop]
transitions:
  - {from: waiting, to: done, event: stop}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait(predicate: object, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"ui_screenshots: timed out waiting for {what}")
        time.sleep(0.05)


def seed(store: SQLiteStore, folder: Path) -> list[subprocess.Popen[bytes]]:
    config = folder / "worker.yaml"
    config.write_text(IDLE)
    procs = []
    for name in ("worker-1", "worker-2", "worker-3"):
        argv = [str(BIN / "statemachine"), str(config), "--db", f"sqlite:///{store.path}"]
        procs.append(
            subprocess.Popen(
                [*argv, "--machine-name", name],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                stdin=subprocess.DEVNULL,
            )
        )
    for proc, name in zip(procs, ("worker-1", "worker-2", "worker-3"), strict=True):
        wait(lambda p=proc, n=name: (m := store.get_machine(n)) and m.pid == p.pid, name)
    errors = {
        "render-17": "exit 3: convert: unable to open image 'scan-17.tif': No such file\n"
        "  command: convert scan-17.tif -resize 50% out/17.png\n  stderr tail: (1 line)",
        "render-18": "timeout after 30 s (state rendering, action bash)",
        "mail-4": "KeyError: 'recipient' (job data has no key 'recipient'; did you mean"
        " 'recipients'?)",
    }
    for job_id, error in errors.items():
        store.add_job(
            job_id.split("-")[0], {"file": f"{job_id}.tif"}, job_id=job_id, max_attempts=1
        )
        store.claim_job(job_id.split("-")[0], "worker-1@host:1", job_id=job_id)
        store.fail_job(job_id, "worker-1@host:1", error, retry_delay=0)
    for i in range(2):
        store.add_job("report", job_id=f"nightly-{i}", run_after=time.time() + 1800 * (i + 1))
    event = store.send_event("worker-2", "reload_config", {"path": "/etc/app.yaml"})
    store.next_event("worker-2")
    store.mark_event(event.id, "unhandled")
    text = PIPELINE.read_text()
    definition = parse_definition(text, PIPELINE.name, ActionLoader())
    store.register_machine(
        "pipeline-1",
        definition.initial_state,
        pid=os.getpid(),
        hostname=this_host(),
        pid_start=process_start(os.getpid()),
        config_path=PIPELINE.name,
        definition_name=definition.name,
        definition_hash=definition.digest,
        definition_text=text,
        at=time.time(),
    )
    path = [
        ("received", "queued_intake", "next"),
        ("queued_intake", "validating_schema", "start_validation"),
        ("validating_schema", "checking_refs", "next"),
    ]
    for n, (source, target, event_name) in enumerate(path, start=1):
        store.commit_step(Step("pipeline-1", time.time(), n, source, target, event=event_name))
    return procs


async def shoot(url: str, out: Path) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        page = await browser.new_page(viewport={"width": 1400, "height": 1000})
        await page.goto(url)
        await page.locator('#machines tr[data-health="dead"]').wait_for(timeout=15_000)
        await page.locator('.problems-failed li[data-job="render-17"]').wait_for()
        await page.locator('.problems-failed li[data-job="render-17"] summary').click()
        await page.locator('#machines tr[data-name="worker-1"]').click()
        await page.locator("#summary", has_text="dead").wait_for()
        await page.screenshot(path=str(out / "ui-health.png"), full_page=True)
        await page.locator('#machines tr[data-name="pipeline-1"]').click()
        await page.locator(".crumbs .crumb-group", has_text="Validation").wait_for()
        await page.locator(".crumbs button.crumb-top").click()
        await page.locator("#diagram g.node.sm-group").nth(4).wait_for()
        await page.wait_for_timeout(300)
        await page.locator("#diagram-panel").screenshot(path=str(out / "ui-groups.png"))
        await browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sm-shots") as tmp:
        folder = Path(tmp)
        store = SQLiteStore(str(folder / "sm.db"))
        procs = seed(store, folder)
        port = free_port()
        ui = subprocess.Popen(
            [str(BIN / "statemachine-ui"), "--db", f"sqlite:///{store.path}", "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{port}"

            def up() -> bool:
                try:
                    return httpx.get(f"{url}/api/health", timeout=1).status_code == 200
                except httpx.HTTPError:
                    return False

            wait(up, "statemachine-ui")
            os.kill(procs[1].pid, signal.SIGKILL)
            asyncio.run(shoot(url + "/", args.out))
        finally:
            ui.terminate()
            for proc in procs:
                if proc.poll() is None:
                    proc.terminate()
                proc.wait(10)
            ui.wait(10)
            store.close()


if __name__ == "__main__":
    main()
