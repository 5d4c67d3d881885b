"""The event log shows an event that a crash interrupted (DESIGN §13.5): delivered again, or
failed for good, as an error row with the reason, in the snapshot and live."""

from __future__ import annotations

from typing import Any

from statemachine_engine.database.records import MAX_EVENT_DELIVERIES, Step
from statemachine_engine.database.sqlite import SQLiteStore


def consume(store: SQLiteStore, event_id: int, step: int) -> None:
    store.commit_step(
        Step(
            "handler",
            store.clock.now(),
            step,
            "idle",
            "busy",
            "go",
            consumed_event_id=event_id,
            consumed_event_status="handling",
        )
    )


async def test_interrupted_events_stand_out_in_the_event_log(
    store: SQLiteStore, ui_server: Any, browser: Any, shot: Any
) -> None:
    store.register_machine(
        "handler",
        "idle",
        pid=0,
        hostname="localhost",
        config_path="h.yaml",
        definition_name="handler",
        definition_hash="h",
        definition_text="name: handler\n",
        at=store.clock.now(),
    )
    go = store.send_event("handler", "go")
    consume(store, go.id, 1)
    store.recover_events("handler", "machine handler (pid 7 on h) died while handling it")
    page = await browser.new_page(viewport={"width": 1500, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(ui_server.url + "/")
    again = page.locator('#log li.err[data-kind="event_interrupted"]', has_text="delivered again")
    await again.wait_for(timeout=10_000)
    assert f"event go #{go.id} delivered again: interrupted: machine handler (pid 7" in (
        await again.text_content() or ""
    )

    for delivery in range(2, MAX_EVENT_DELIVERIES + 1):
        consume(store, go.id, delivery)
        store.recover_events("handler", "machine handler (pid 8 on h) died while handling it")
    failed = page.locator('#log li.err[data-kind="event_interrupted"]', has_text="failed")
    await failed.wait_for(timeout=10_000)
    assert "not delivered again" in (await failed.text_content() or "")
    await page.select_option("#log-kind", "event_interrupted")
    assert await page.locator("#log li").count() == MAX_EVENT_DELIVERIES
    await page.locator("#error-count.some").wait_for()
    await page.screenshot(path=shot("event-interrupted"), full_page=True)
    assert errors == []
