"""The page's quality (issue 16 item 4): HEAD and compression on static files, a favicon,
Mermaid fetched only when a diagram is drawn, keyboard access, labelled inputs, dark mode,
and notices that coalesce and can be muted. Real `statemachine-ui` and headless Chromium."""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Any

import httpx

from statemachine_engine.database.sqlite import SQLiteStore

DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"

WORKER = """\
name: Worker
initial_state: waiting
states: [waiting, working, broken]
events: [new_job, no_jobs, done, error]
actions:
  waiting:
    - type: check_database_queue
      job_type: task
  working:
    - type: complete_job
      success: done
  broken:
    - type: bash
      command: "echo kaboom >&2; exit 3"
transitions:
  - {from: waiting, to: working, event: new_job}
  - {from: waiting, to: waiting, event: no_jobs}
  - {from: working, to: waiting, event: done}
  - {from: broken, to: waiting, event: error}
"""


def test_static_files_answer_head_and_come_compressed(ui_server: Any) -> None:
    with httpx.Client(base_url=ui_server.url, timeout=10) as client:
        for path in ("/", "/static/app.js", "/static/style.css", "/favicon.ico"):
            head = client.head(path)
            assert head.status_code == 200, path
            assert head.content == b"", path
        favicon = client.get("/favicon.ico")
        assert favicon.headers["content-type"].startswith("image/svg+xml")
        assert favicon.content.startswith(b"<svg")
        raw = client.get("/static/app.js", headers={"accept-encoding": "identity"})
        assert "content-encoding" not in raw.headers
        # httpx decodes gzip itself; read the wire bytes to see the compression.
        with client.stream("GET", "/static/app.js", headers={"accept-encoding": "gzip"}) as packed:
            assert packed.headers["content-encoding"] == "gzip"
            wire = b"".join(packed.iter_raw())
        assert len(wire) < len(raw.content) / 2
        assert gzip.decompress(wire) == raw.content
        assert client.head("/static/missing.js").status_code == 404


async def test_mermaid_is_fetched_only_to_draw_a_diagram(
    store: SQLiteStore, ui_server: Any, browser: Any
) -> None:
    page = await browser.new_page()
    fetched: list[str] = []
    page.on("request", lambda request: fetched.append(request.url))
    await page.goto(ui_server.url + "/")
    await page.locator("#conn.up").wait_for(timeout=10_000)
    await page.wait_for_function("window.smStats.snapshots >= 1", timeout=10_000)
    assert not [url for url in fetched if "mermaid" in url]  # no machine: nothing to draw
    assert await page.evaluate("window.smStats.firstSnapshotMs") > 0


async def test_mermaid_loads_for_the_first_diagram(
    machine: Any, ui_server: Any, browser: Any
) -> None:
    await machine(WORKER, "worker-1")
    page = await browser.new_page()
    await page.goto(ui_server.url + "/")
    await page.locator('#diagram[data-machine="worker-1"] svg').wait_for(timeout=20_000)
    scripts = await page.evaluate(
        "[...document.scripts].map((s) => s.src).filter((s) => s.includes('mermaid'))"
    )
    assert len(scripts) == 1


async def test_rows_cards_and_inputs_work_from_the_keyboard(
    machine: Any, store: SQLiteStore, ui_server: Any, browser: Any
) -> None:
    await machine(WORKER, "worker-1")
    await machine(WORKER, "worker-2")
    store.add_job("other", {"n": 1}, job_id="job-k")
    page = await browser.new_page(viewport={"width": 1500, "height": 1000})
    await page.goto(ui_server.url + "/")
    row = page.locator('#machines tr[data-name="worker-2"]')
    await row.wait_for(timeout=10_000)
    await page.locator('#kanban .card[data-machine="worker-1"]').wait_for(timeout=10_000)

    # every input, select and button has a name a screen reader can say
    unnamed = await page.evaluate(
        """[...document.querySelectorAll('input, select, button')].filter((n) => {
             if (n.getAttribute('aria-label') || n.textContent.trim()) return false;
             if (n.closest('label')) return false;
             return !(n.id && document.querySelector(`label[for="${n.id}"]`));
           }).map((n) => n.id || n.outerHTML)"""
    )
    assert unnamed == []

    await row.focus()
    await page.keyboard.press("Enter")
    await page.locator('#diagram[data-machine="worker-2"]').wait_for(timeout=10_000)
    await page.locator('#kanban .card[data-machine="worker-1"]').focus()
    await page.keyboard.press(" ")
    await page.locator('#diagram[data-machine="worker-1"]').wait_for(timeout=10_000)
    job_row = page.locator('#jobs tr[data-job="job-k"]')
    await job_row.wait_for(timeout=10_000)
    await job_row.focus()
    await page.keyboard.press("Enter")
    await page.locator("#job-detail-title", has_text="job-k").wait_for(timeout=10_000)
    assert await page.locator("#job-detail").is_visible()


async def test_dark_mode_follows_the_system(
    machine: Any, ui_server: Any, browser: Any, shot: Any
) -> None:
    await machine(WORKER, "worker-1")
    page = await browser.new_page(viewport={"width": 1500, "height": 900}, color_scheme="dark")
    await page.goto(ui_server.url + "/")
    await page.locator('#diagram[data-machine="worker-1"] svg').wait_for(timeout=20_000)
    body = await page.evaluate("getComputedStyle(document.body).backgroundColor")
    panel = await page.evaluate(
        "getComputedStyle(document.querySelector('.panel')).backgroundColor"
    )
    assert body == "rgb(18, 21, 28)"
    assert panel == "rgb(27, 32, 41)"
    await page.screenshot(path=shot("ui-dark"))
    if os.environ.get("STATEMACHINE_DOCS_SCREENSHOTS") == "1":  # the picture in docs/ui.md
        await page.screenshot(path=str(DOCS_IMAGES / "ui-dark.png"))
    light = await browser.new_page(color_scheme="light")
    await light.goto(ui_server.url + "/")
    await light.locator("#conn.up").wait_for(timeout=10_000)
    assert await light.evaluate("getComputedStyle(document.body).backgroundColor") == (
        "rgb(243, 245, 248)"
    )


async def test_notices_coalesce_and_can_be_muted(
    machine: Any, store: SQLiteStore, ui_server: Any, browser: Any
) -> None:
    worker = await machine(WORKER, "worker-1")
    page = await browser.new_page(viewport={"width": 1500, "height": 1000})
    await page.goto(ui_server.url + "/")
    await page.locator("#conn.up").wait_for(timeout=10_000)
    await page.locator('#machines tr[data-name="worker-1"]').wait_for(timeout=10_000)

    # the same unhandled event three times: one notice counting x3
    for _ in range(3):
        store.send_event("worker-1", "nobody_listens")
    worker.engine.wake()
    counted = page.locator("#toasts .toast[data-count='\u00d73']")
    await counted.wait_for(timeout=15_000)
    assert await page.locator("#toasts .toast", has_text="nobody_listens").count() == 1

    # many different ones: at most four notices and one "+N more" line
    for n in range(8):
        store.send_event("worker-1", f"stray_{n}")
    worker.engine.wake()
    await page.locator("#toasts .toast.more").wait_for(timeout=15_000)
    assert await page.locator("#toasts .toast:not(.more)").count() <= 4

    # muted: the notices go, new ones stay away but are counted on the button
    await page.click("#toast-mute")
    assert await page.get_attribute("#toast-mute", "aria-pressed") == "true"
    assert await page.locator("#toasts .toast:not(.ok):not(.more)").count() == 0
    store.send_event("worker-1", "while_muted")
    worker.engine.wake()
    await page.locator("#toast-mute", has_text="(1)").wait_for(timeout=15_000)
    assert await page.locator("#toasts .toast", has_text="while_muted").count() == 0
    # remembered by the browser
    await page.reload()
    await page.locator("#conn.up").wait_for(timeout=10_000)
    assert await page.get_attribute("#toast-mute", "aria-pressed") == "true"
