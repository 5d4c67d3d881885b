"""The Schedules panel in Chromium against a real `statemachine-ui`: schedules added through
the store show their timing and next run (a cron schedule also in its own time zone), Pause
and Resume work by mouse and by keyboard alone and change the store, and changes made
elsewhere (the CLI, a machine firing a tick) reach the open page without a reload."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from statemachine_engine.database import ScheduleSpec, Timing
from statemachine_engine.database.sqlite import SQLiteStore

from .conftest import wait_for

DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"


def stamp(ts: float, zone: str = "UTC") -> str:
    return datetime.fromtimestamp(ts, ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S")


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def paused(store: SQLiteStore, name: str) -> bool:
    schedule = store.get_schedule(name)
    assert schedule is not None
    return schedule.paused


def seed(store: SQLiteStore) -> None:
    store.add_schedule(ScheduleSpec("cleanup", "cleanup", Timing(every=300)))
    store.add_schedule(
        ScheduleSpec(
            "nightly",
            "report",
            Timing(cron="0 3 * * *", timezone="Europe/Berlin"),
            payload={"format": "pdf"},
            catch_up="all",
        )
    )
    store.add_schedule(ScheduleSpec("hourly", "sync", Timing(every=3600)))
    store.pause_schedule("hourly")


async def open_page(browser: Any, url: str, **options: Any) -> Any:
    page = await browser.new_page(
        viewport={"width": 1500, "height": 1300}, timezone_id="UTC", **options
    )
    await page.goto(url + "/")
    await page.locator('#schedules tr[data-name="nightly"]').wait_for(timeout=20_000)
    return page


async def test_schedules_show_their_next_run_and_pause_and_resume(
    store: SQLiteStore, ui_server: Any, browser: Any, shot: Any
) -> None:
    seed(store)
    page = await open_page(browser, ui_server.url)
    assert await page.locator("#schedule-count").inner_text() == "(3)"
    for schedule in store.list_schedules():
        row = page.locator(f'#schedules tr[data-name="{schedule.name}"]')
        assert await row.locator("td.when").inner_text() == schedule.spec.timing.describe()
        assert await row.locator("td.job-type").inner_text() == schedule.spec.job_type
        status = "paused" if schedule.paused else "active"
        assert await row.get_attribute("data-status") == status
        assert await row.locator(".sched-status").inner_text() == status
        if schedule.paused:
            assert await row.locator("td.next").inner_text() == "—"
            continue
        moment = row.locator("td.next time")
        assert await moment.get_attribute("datetime") == iso(schedule.next_due)
        assert await moment.inner_text() == stamp(schedule.next_due)
        relative = await row.locator("td.next .rel").inner_text()
        assert relative.startswith("in "), relative
        assert await row.locator("td.last").inner_text() == "never"
    nightly = store.get_schedule("nightly")
    assert nightly is not None
    zone_time = page.locator('#schedules tr[data-name="nightly"] .zone-time')
    assert await zone_time.inner_text() == (
        f"({stamp(nightly.next_due, 'Europe/Berlin')} Europe/Berlin)"
    )
    assert stamp(nightly.next_due, "Europe/Berlin").endswith(" 03:00:00")
    cleanup = store.get_schedule("cleanup")
    assert cleanup is not None
    assert await page.locator('#schedules tr[data-name="cleanup"] .rel').inner_text() != ""

    # the mouse pauses
    await page.get_by_role("button", name="pause schedule cleanup").click()
    wait_for(lambda: paused(store, "cleanup"), "cleanup paused")
    await page.locator('#schedules tr[data-name="cleanup"][data-status="paused"]').wait_for()
    await page.locator(".toast", has_text="schedule cleanup: paused").wait_for()

    # the keyboard resumes (Enter), and the focus stays on the row's button: Space pauses
    await page.get_by_role("button", name="resume schedule hourly").focus()
    await page.keyboard.press("Enter")
    wait_for(lambda: not paused(store, "hourly"), "hourly resumed")
    row = page.locator('#schedules tr[data-name="hourly"][data-status="active"]')
    await row.wait_for(timeout=10_000)
    hourly = store.get_schedule("hourly")
    assert hourly is not None
    assert await row.locator("td.next time").get_attribute("datetime") == iso(hourly.next_due)
    assert await page.evaluate("document.activeElement.getAttribute('aria-label')") == (
        "pause schedule hourly"
    )
    await page.keyboard.press(" ")
    wait_for(lambda: paused(store, "hourly"), "hourly paused again")
    await page.get_by_role("button", name="resume schedule cleanup").focus()
    await page.keyboard.press(" ")
    wait_for(lambda: not paused(store, "cleanup"), "cleanup resumed")
    await page.locator('#schedules tr[data-name="cleanup"][data-status="active"]').wait_for()
    await page.locator('#schedules tr[data-name="hourly"][data-status="paused"]').wait_for()
    await page.locator("#schedules-panel").scroll_into_view_if_needed()
    await page.screenshot(path=shot("schedules"))


async def test_changes_made_elsewhere_reach_the_open_page(
    store: SQLiteStore, ui_server: Any, browser: Any
) -> None:
    seed(store)
    page = await open_page(browser, ui_server.url)
    store.pause_schedule("cleanup")  # what `statemachine-cli schedule pause` does
    await page.locator('#schedules tr[data-name="cleanup"][data-status="paused"]').wait_for(
        timeout=20_000
    )
    store.add_schedule(ScheduleSpec("beat", "beat", Timing(every=1)))
    await page.locator('#schedules tr[data-name="beat"]').wait_for(timeout=20_000)

    def fired() -> float | None:
        store.fire_schedules()  # what a machine does when it waits
        schedule = store.get_schedule("beat")
        assert schedule is not None
        return schedule.last_tick

    last_tick = wait_for(fired, "a tick of beat", timeout=10)
    cell = page.locator(f'#schedules tr[data-name="beat"] td.last[data-at="{int(last_tick)}"]')
    await cell.wait_for(timeout=20_000)
    assert await cell.locator("time").inner_text() == stamp(last_tick)
    assert (await cell.locator(".rel").inner_text()).endswith(" ago")


async def test_dark_mode(store: SQLiteStore, ui_server: Any, browser: Any, shot: Any) -> None:
    seed(store)
    page = await open_page(browser, ui_server.url, color_scheme="dark")
    panel = page.locator("#schedules-panel")
    assert await panel.evaluate("(n) => getComputedStyle(n).backgroundColor") == "rgb(27, 32, 41)"
    active = page.locator('#schedules tr[data-name="cleanup"] .sched-status')
    assert await active.evaluate("(n) => getComputedStyle(n).backgroundColor") == "rgb(30, 58, 36)"
    button = page.get_by_role("button", name="pause schedule cleanup")
    assert await button.evaluate("(n) => getComputedStyle(n).color") == "rgb(221, 227, 236)"
    await panel.screenshot(path=shot("schedules-dark"))
    if os.environ.get("STATEMACHINE_DOCS_SCREENSHOTS") == "1":  # the picture in docs/ui.md
        await panel.screenshot(path=str(DOCS_IMAGES / "ui-schedules.png"))


async def test_hostile_text_in_a_schedule_is_rendered_as_text(
    store: SQLiteStore, ui_server: Any, browser: Any
) -> None:
    seed(store)
    img = "<img src=x onerror=window.__xss=1>"
    store.add_schedule(
        ScheduleSpec(
            "odd",
            img,
            Timing(every=60),
            payload={"x": '"><script>window.__xss=2</script>'},
            machine_type=img,
        )
    )
    page = await open_page(browser, ui_server.url)
    row = page.locator('#schedules tr[data-name="odd"]')
    await row.wait_for(timeout=20_000)
    assert await row.locator("td.job-type").inner_text() == img
    assert img in (await row.locator("td.name").get_attribute("title") or "")
    assert await page.locator("#schedules img, #schedules script").count() == 0
    assert await page.evaluate("window.__xss") is None
