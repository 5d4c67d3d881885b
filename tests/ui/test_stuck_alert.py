"""A dwell alert (`options.max_dwell`, issue 17 item 3) stands out in the UI's event log as an
error row naming the state and the seconds, and the kind filter finds it."""

from __future__ import annotations

from typing import Any

from statemachine_engine.core.deadlines import STUCK_KIND
from statemachine_engine.database.sqlite import SQLiteStore


async def test_stuck_alerts_are_error_rows_in_the_event_log(
    store: SQLiteStore, ui_server: Any, browser: Any, shot: Any
) -> None:
    store.register_machine(
        "worker",
        "processing",
        pid=0,
        hostname="localhost",
        config_path="w.yaml",
        definition_name="worker",
        definition_hash="w",
        definition_text="name: worker\n",
        at=store.clock.now(),
    )
    page = await browser.new_page(viewport={"width": 1500, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(ui_server.url + "/")
    base = {"machine_name": "worker", "seconds": 3600.0, "since": store.clock.now()}
    store.add_realtime("worker", STUCK_KIND, {**base, "state": "processing", "event": "stuck"})
    store.add_realtime("worker", STUCK_KIND, {**base, "state": "waiting", "event": None})
    fired = page.locator('#log li.err[data-kind="stuck"]', has_text="firing stuck")
    await fired.wait_for(timeout=10_000)
    assert "stuck in processing for 3600 s (max_dwell): firing stuck" in (
        await fired.text_content() or ""
    )
    alert = page.locator('#log li.err[data-kind="stuck"]', has_text="alert only")
    await alert.wait_for(timeout=10_000)
    assert "stuck in waiting for 3600 s" in (await alert.text_content() or "")
    await page.select_option("#log-kind", "stuck")
    assert await page.locator("#log li").count() == 2
    await page.locator("#error-count.some").wait_for()
    await page.screenshot(path=shot("stuck-alert"), full_page=True)
    assert errors == []
