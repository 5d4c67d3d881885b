"""Health and the Problems view in Chromium against a real `statemachine-ui`: a machine
process killed with SIGKILL shows as dead and is counted; failed jobs are retried with the
keyboard only, edited then retried; delayed jobs are cancelled in bulk."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from statemachine_engine.database.sqlite import SQLiteStore

from .conftest import wait_for

IDLE = """\
name: Idle
initial_state: waiting
states: [waiting, done]
events: [stop]
transitions:
  - {from: waiting, to: done, event: stop}
"""
BIN = Path(sys.executable).parent


def fail(store: SQLiteStore, job_id: str, error: str, data: Any = None) -> None:
    store.add_job("render", data if data is not None else {"n": 1}, job_id=job_id, max_attempts=1)
    assert store.claim_job("render", "w@h:1", job_id=job_id) is not None
    store.fail_job(job_id, "w@h:1", error, retry_delay=0)


async def test_a_machine_killed_with_sigkill_is_dead_within_5_s_and_counted(
    store: SQLiteStore, ui_server: Any, browser: Any, tmp_path: Path, shot: Any
) -> None:
    config = tmp_path / "idle.yaml"
    config.write_text(IDLE)
    procs = []
    for name in ("idle-1", "idle-2"):
        log = (tmp_path / f"{name}.log").open("w")
        procs.append(
            subprocess.Popen(
                [
                    str(BIN / "statemachine"),
                    str(config),
                    "--db",
                    f"sqlite:///{store.path}",
                    "--machine-name",
                    name,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        )
    try:
        for proc, name in zip(procs, ("idle-1", "idle-2"), strict=True):
            wait_for(lambda p=proc, n=name: (m := store.get_machine(n)) and m.pid == p.pid, name)
        page = await browser.new_page(viewport={"width": 1500, "height": 1100})
        await page.goto(ui_server.url + "/")
        await page.locator('#machines tr[data-name="idle-2"][data-health="ok"]').wait_for(
            timeout=15_000
        )
        await page.locator("#summary", has_text="2 machines, 2 alive").wait_for()
        os.kill(procs[0].pid, signal.SIGKILL)  # not reaped: a zombie until the test waits
        killed = time.monotonic()
        row = page.locator('#machines tr[data-name="idle-1"][data-health="dead"]')
        await row.wait_for(timeout=30_000)  # a hang fails here; the bound is checked below
        seen = time.monotonic() - killed
        # The server checks liveness every 2 s, so a quiet host shows the death within 5 s.
        # On a host saturated by other work (CI under load) the browser and the server wait
        # for a CPU as well: the bound then doubles, still failing a check that never runs.
        cpus = os.cpu_count() or 1
        bound = 5.0 if os.getloadavg()[0] <= cpus else 10.0
        assert seen < bound, (seen, os.getloadavg())
        await page.locator("#summary", has_text="2 machines, 1 alive, 1 dead").wait_for(
            timeout=1_000
        )
        assert await row.locator(".health").inner_text() == "dead"
        await page.locator(".toast", has_text="idle-1: dead").wait_for(timeout=2_000)
        await page.locator('#log li[data-kind="health"]', has_text="idle-1: dead").wait_for()
        assert await page.locator(".toast", has_text="idle-1: dead").count() == 1
        print(f"kill -9 shown as dead after {seen:.2f} s")
        await page.screenshot(path=shot("health-dead"))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
            proc.wait(10)


async def test_keyboard_only_retry_of_a_failed_job(
    store: SQLiteStore, ui_server: Any, browser: Any
) -> None:
    fail(store, "broken-1", "exit 3: kaboom\nTraceback (most recent call last):\n  line 2")
    page = await browser.new_page(viewport={"width": 1500, "height": 1100})
    await page.goto(ui_server.url + "/")
    item = page.locator('.problems-failed li[data-job="broken-1"]')
    await item.wait_for(timeout=10_000)
    assert await item.locator("summary").inner_text() == "exit 3: kaboom"
    target = 'li[data-job="broken-1"] button.retry'
    for _ in range(300):
        await page.keyboard.press("Tab")
        if await page.evaluate(f"document.activeElement.matches('{target}')"):
            break
    else:
        raise AssertionError("Tab never reached the Retry button of broken-1")
    await page.keyboard.press("Enter")
    wait_for(lambda: (j := store.get_job("broken-1")) and j.status == "pending", "retry")
    await item.wait_for(state="detached", timeout=5_000)


async def test_bulk_cancel_of_delayed_jobs(
    store: SQLiteStore, ui_server: Any, browser: Any
) -> None:
    later = store.clock.now() + 3600
    for i in range(3):
        store.add_job("render", {"i": i}, job_id=f"later-{i}", run_after=later)
    page = await browser.new_page(viewport={"width": 1500, "height": 1100})
    await page.goto(ui_server.url + "/")
    first = page.locator('.problems-delayed li[data-job="later-0"]')
    await first.wait_for(timeout=10_000)
    assert "runs in 59m" in await first.locator(".runs-at").inner_text()
    await page.locator('.problems-delayed li[data-job="later-0"] .pick').check()
    await page.locator('.problems-delayed li[data-job="later-2"] .pick').check()
    await page.locator(".problems-delayed button.bulk-delayed").click()
    await page.locator(".toast", has_text="2 jobs: cancelled").wait_for(timeout=5_000)
    statuses = {j.job_id: j.status for j in store.list_jobs(limit=10)}
    assert statuses == {"later-0": "cancelled", "later-1": "pending", "later-2": "cancelled"}
    await first.wait_for(state="detached")


async def test_edit_then_retry_validates_the_json(
    store: SQLiteStore, ui_server: Any, browser: Any, shot: Any
) -> None:
    fail(store, "bad-data", "KeyError: 'path'", data={"paht": "/tmp/x"})
    page = await browser.new_page(viewport={"width": 1500, "height": 1100})
    await page.goto(ui_server.url + "/")
    item = page.locator('.problems-failed li[data-job="bad-data"]')
    await item.locator("button.edit").click(timeout=10_000)
    area = page.get_by_label("data of job bad-data (JSON)")
    assert '"paht": "/tmp/x"' in await area.input_value()
    await area.fill('{"path": "/tmp/x",}')
    await item.get_by_role("button", name="Retry with this data").click()
    await item.locator(".edit-error", has_text="not valid JSON").wait_for()
    job = store.get_job("bad-data")
    assert job is not None and (job.status, job.data) == ("failed", {"paht": "/tmp/x"})
    await page.screenshot(path=shot("problems-bad-json"))
    await area.fill('{"path": "/tmp/x"}')
    await item.get_by_role("button", name="Retry with this data").click()
    wait_for(lambda: (j := store.get_job("bad-data")) and j.status == "pending", "retry")
    job = store.get_job("bad-data")
    assert job is not None and job.data == {"path": "/tmp/x"}
