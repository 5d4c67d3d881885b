"""200 machines and 10,000 jobs: the page loads, pages the jobs and still follows changes."""

from __future__ import annotations

import time
from typing import Any

import pytest

from statemachine_engine.config.loader import parse_definition
from statemachine_engine.core import ActionLoader
from statemachine_engine.database.records import Step
from statemachine_engine.database.sqlite import SQLiteStore

pytestmark = pytest.mark.serial  # times the page with 200 machines

FLEET = """\
name: Fleet
initial_state: idle
template: true
states: [idle, busy]
events: [go, done]
transitions:
  - {from: idle, to: busy, event: go}
  - {from: busy, to: idle, event: done}
"""


async def test_two_hundred_machines_and_ten_thousand_jobs(
    store: SQLiteStore, ui_server: Any, browser: Any, shot: Any
) -> None:
    definition = parse_definition(FLEET, "fleet.yaml", ActionLoader())
    for i in range(200):
        store.register_machine(
            f"fleet-{i:03d}",
            "idle",
            pid=0,
            hostname="localhost",
            config_path="fleet.yaml",
            definition_name=definition.name,
            definition_hash=definition.digest,
            definition_text=FLEET,
            at=store.clock.now(),
        )
    for i in range(10_000):
        store.add_job("bulk", {"i": i})
    page = await browser.new_page(viewport={"width": 1500, "height": 1000})
    started = time.monotonic()
    await page.goto(ui_server.url + "/")
    await page.locator('#job-counts button[data-status="all"]', has_text="10000").wait_for(
        timeout=15_000
    )
    await page.locator("#jobs-page", has_text="1-50 of 10000").wait_for(timeout=15_000)
    assert await page.locator("#machines tbody tr").count() == 200
    assert await page.locator("#jobs tbody tr").count() == 50  # paged on the server
    load_seconds = time.monotonic() - started
    assert load_seconds < 10, load_seconds

    await page.click("#jobs-next")
    await page.locator("#jobs-page", has_text="51-100 of 10000").wait_for()
    store.add_job("rare", {"x": 1}, job_id="rare-1")
    await page.fill("#jobs-type", "rare")
    await page.press("#jobs-type", "Enter")
    await page.locator("#jobs-page", has_text="1-1 of 1").wait_for()
    assert await page.locator("#jobs tbody tr").count() == 1

    store.commit_step(Step("fleet-150", store.clock.now(), 1, "idle", "busy", "go"))
    cell = page.locator('#machines tr[data-name="fleet-150"] .state', has_text="busy")
    await cell.wait_for(timeout=5_000)
    await page.locator(
        '#kanban .column[data-column="busy"] .card[data-machine="fleet-150"]'
    ).wait_for()
    assert await page.locator('#kanban .column[data-column="idle"] .card').count() == 199
    await page.screenshot(path=shot("scale"), full_page=False)
