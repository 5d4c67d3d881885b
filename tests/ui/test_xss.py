"""Hostile names and messages render as text; no script runs (catalogue 36)."""

from __future__ import annotations

from typing import Any

from statemachine_engine.database.records import Step
from statemachine_engine.database.sqlite import SQLiteStore

IMG = "<img src=x onerror=window.__xss=1>"
SCRIPT = 'b"]<script>window.__xss=2</script>'
# State and event names follow the name rule (a hostile one does not load); hostile text still
# reaches the page through the display name, machine names, states and events written to
# the database directly (an older version, another tool), and activity messages.
HOSTILE = """\
name: "X <script>window.__xss=3</script>"
initial_state: a
states: [a, b]
events: [go]
transitions:
  - {from: a, to: b, event: go}
"""


async def test_hostile_text_is_rendered_as_text(
    store: SQLiteStore, ui_server: Any, browser: Any, shot: Any
) -> None:
    from statemachine_engine.config.loader import parse_definition
    from statemachine_engine.core import ActionLoader

    definition = parse_definition(HOSTILE, "x.yaml", ActionLoader())
    for name in ("evil-1", IMG):
        store.register_machine(
            name,
            IMG,
            pid=0,
            hostname="localhost",
            config_path="x.yaml",
            definition_name=definition.name,
            definition_hash=definition.digest,
            definition_text=HOSTILE,
            at=store.clock.now(),
        )
    store.commit_step(
        Step(
            "evil-1",
            store.clock.now(),
            1,
            IMG,
            SCRIPT,
            'go"] --> evil',
            realtime=[("activity", {"machine_name": "evil-1", "message": IMG, "level": "error"})],
        )
    )
    page = await browser.new_page(viewport={"width": 1400, "height": 900})
    response = await page.goto(ui_server.url + "/")
    assert response is not None
    assert "script-src 'self'" in (await response.all_headers())["content-security-policy"]
    await page.locator('#machines tr[data-name="evil-1"]').click()
    await page.locator("#diagram svg").wait_for(timeout=10_000)
    await page.locator("#log li.err", has_text=IMG).first.wait_for(timeout=10_000)
    assert await page.locator("#machines td.name", has_text=IMG).count() == 1
    assert await page.locator("#machines img, #log img, #kanban img, #diagram img").count() == 0
    assert await page.locator("#diagram script, #log script").count() == 0
    assert "X <script>window.__xss=3</script>" in (await page.text_content("body") or "")
    await page.screenshot(path=shot("xss"), full_page=True)
    assert await page.evaluate("window.__xss") is None
