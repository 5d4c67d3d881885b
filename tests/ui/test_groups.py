"""A big definition (33 states, 5 groups) in Chromium: the current state's group opens by
itself, the overview shows one node per group, a group node drills down and the breadcrumb
goes back; the diagram zooms and pans with buttons, the wheel, dragging and the keyboard."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from statemachine_engine.config.loader import parse_definition
from statemachine_engine.core import ActionLoader
from statemachine_engine.database.liveness import process_start, this_host
from statemachine_engine.database.records import Step
from statemachine_engine.database.sqlite import SQLiteStore

PIPELINE = (Path(__file__).parent / "definitions" / "pipeline33.yaml").read_text()
MAX_HEIGHT = 600  # the whole definition drew ~4,300 px tall


def start_pipeline(store: SQLiteStore, name: str, path: list[tuple[str, str, str]]) -> None:
    """Record machine `name` as running (this process) and walk it along `path`."""
    import os

    definition = parse_definition(PIPELINE, "pipeline33.yaml", ActionLoader())
    store.register_machine(
        name,
        definition.initial_state,
        pid=os.getpid(),
        hostname=this_host(),
        pid_start=process_start(os.getpid()),
        config_path="pipeline33.yaml",
        definition_name=definition.name,
        definition_hash=definition.digest,
        definition_text=PIPELINE,
        at=store.clock.now(),
    )
    for n, (source, target, event) in enumerate(path, start=1):
        store.commit_step(Step(name, store.clock.now(), n, source, target, event=event))


async def box_height(page: Any) -> float:
    return float(await page.locator("#diagram").evaluate("e => e.getBoundingClientRect().height"))


async def test_drill_down_into_a_group_and_back(
    store: SQLiteStore, ui_server: Any, browser: Any, shot: Any
) -> None:
    start_pipeline(
        store,
        "pipe-1",
        [("received", "unpacking", "next"), ("unpacking", "intake_failed", "error")],
    )
    start_pipeline(store, "pipe-2", [("received", "queued_intake", "next")])
    page = await browser.new_page(viewport={"width": 1500, "height": 1100})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(ui_server.url + "/")
    await page.locator('#machines tr[data-name="pipe-1"]').click()
    diagram = page.locator("#diagram")

    # the current state's group is open, its state highlighted
    await page.locator(".crumbs .crumb-group", has_text="Intake").wait_for(timeout=10_000)
    await diagram.locator("g.node.sm-current", has_text="intake_failed").wait_for()
    assert await diagram.locator("g.node", has_text="checking_refs").count() == 0
    assert await box_height(page) <= MAX_HEIGHT

    # breadcrumb back to the overview: one node per group, the current one highlighted
    await page.locator(".crumbs button.crumb-top").click()
    await page.locator(".crumbs span.crumb-top[aria-current=page]").wait_for()
    await diagram.locator("g.node.sm-group").nth(4).wait_for()
    groups = await diagram.locator("g.node.sm-group").evaluate_all(
        "nodes => nodes.map(n => n.dataset.group)"
    )
    assert sorted(groups) == ["Delivery", "Intake", "Processing", "Review", "Validation"]
    assert await diagram.locator("g.node.sm-current", has_text="Intake").count() == 1
    natural = await diagram.locator("svg").evaluate("s => s.getBBox().height")
    assert await box_height(page) <= MAX_HEIGHT
    await page.screenshot(path=shot("groups-overview"))

    # drill down by clicking a group node, then by keyboard on the overview
    await diagram.locator('g.node[data-group="Review"]').click()
    await page.locator(".crumbs .crumb-group", has_text="Review").wait_for()
    await diagram.locator("g.node", has_text="changes_requested").wait_for()
    await diagram.locator("g.node", has_text="Processing (group)").wait_for()
    await page.locator(".crumbs button.crumb-top").click()
    await diagram.locator('g.node[data-group="Delivery"]').focus()
    await page.keyboard.press("Enter")
    await page.locator(".crumbs .crumb-group", has_text="Delivery").wait_for()
    await diagram.locator("g.node", has_text="uploading").wait_for()

    # the machine moving on does not pull a view the user chose away
    store.commit_step(Step("pipe-1", store.clock.now(), 3, "intake_failed", "received", "retry"))
    await page.locator("#last-transition", has_text="intake_failed --retry--> received").wait_for()
    assert await page.locator(".crumbs .crumb-group").inner_text() == "Delivery"
    # selecting another machine follows its state again
    await page.locator('#machines tr[data-name="pipe-2"]').click()
    await page.locator(".crumbs .crumb-group", has_text="Intake").wait_for()
    await diagram.locator("g.node.sm-current", has_text="queued_intake").wait_for()
    assert errors == []
    print(f"overview drawn {natural:.0f} px tall at 100 %")


async def test_zoom_and_pan(store: SQLiteStore, ui_server: Any, browser: Any) -> None:
    start_pipeline(store, "pipe-1", [("received", "splitting", "next")])
    page = await browser.new_page(viewport={"width": 1500, "height": 1100})
    await page.goto(ui_server.url + "/")
    await page.locator('#machines tr[data-name="pipe-1"]').click()
    diagram = page.locator("#diagram")
    await diagram.locator("g.node.sm-current").wait_for(timeout=10_000)

    async def zoom() -> float:
        return float(await diagram.get_attribute("data-zoom") or "nan")

    async def transform() -> str:
        return str(await diagram.locator("svg").evaluate("s => s.style.transform"))

    async def eventually(check: Callable[[], Awaitable[bool]]) -> None:
        """Input events are handled after Playwright returns: wait for their effect."""
        deadline = time.monotonic() + 10
        while not await check():
            assert time.monotonic() < deadline, "the diagram did not react"
            await asyncio.sleep(0.02)

    start = await zoom()
    await page.get_by_role("button", name="zoom in").click()
    await eventually(lambda: _near(zoom(), start * 1.25))
    await page.get_by_role("button", name="zoom out").click()
    await eventually(lambda: _near(zoom(), start))
    box = await diagram.bounding_box()
    assert box is not None
    await page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    await page.mouse.wheel(0, -100)
    await eventually(lambda: _above(zoom(), start))
    before = await transform()
    await page.mouse.down()
    await page.mouse.move(box["x"] + box["width"] / 2 + 60, box["y"] + box["height"] / 2 + 30)
    await page.mouse.up()
    await eventually(lambda: _differs(transform(), before))
    await diagram.focus()
    level = await zoom()
    await page.keyboard.press("-")
    await eventually(lambda: _below(zoom(), level))
    before = await transform()
    await page.keyboard.press("ArrowLeft")
    await eventually(lambda: _differs(transform(), before))
    await page.keyboard.press("0")
    await page.get_by_role("button", name="fit diagram").click()
    await eventually(lambda: _below(zoom(), 1.0 + 1e-9))


async def _near(value: Awaitable[float], target: float) -> bool:
    return abs(await value - target) < 0.01


async def _above(value: Awaitable[float], bound: float) -> bool:
    return await value > bound


async def _below(value: Awaitable[float], bound: float) -> bool:
    return await value < bound


async def _differs(value: Awaitable[str], other: str) -> bool:
    return await value != other
