"""The page in a real headless Chromium against a real `statemachine-ui` process.

A worker runs in-process on the same SQLite file; the page must see it appear, follow its
state on the diagram and the board as a job flows through, add a job, send an event and show
an error. Screenshots land in test-artifacts/ui/.
"""

from __future__ import annotations

from typing import Any

WORKER = """\
name: Worker
initial_state: waiting
groups:
  Busy: [processing, finishing]
states: [waiting, processing, finishing, exploding]
events: [new_job, no_jobs, step_done, job_done, explode, error, stop]
actions:
  waiting:
    - type: check_database_queue
      job_type: task
  processing:
    - type: sleep
      seconds: 3.0  # long enough for a loaded host to draw and read the diagram in it
      success: step_done
  finishing:
    - type: complete_job
      success: job_done
  exploding:
    - type: bash
      command: "echo kaboom >&2; exit 3"
transitions:
  - {from: waiting, to: processing, event: new_job}
  - {from: waiting, to: waiting, event: no_jobs}
  - {from: waiting, to: exploding, event: explode}
  - {from: processing, to: finishing, event: step_done}
  - {from: finishing, to: waiting, event: job_done}
  - {from: exploding, to: waiting, event: error}
"""


async def test_page_follows_a_job_and_reports_an_error(
    machine: Any, ui_server: Any, browser: Any, shot: Any
) -> None:
    await machine(WORKER, "worker-1")
    await machine(WORKER, "worker-2")
    page = await browser.new_page(viewport={"width": 1500, "height": 1000})
    page_errors: list[str] = []
    page.on("pageerror", lambda exc: page_errors.append(str(exc)))
    await page.goto(ui_server.url + "/")

    # machines appear, in their current state
    row = page.locator('#machines tr[data-name="worker-1"]')
    await row.locator(".state", has_text="waiting").wait_for(timeout=10_000)
    await page.locator('#machines tr[data-name="worker-2"]').wait_for()
    await page.locator("#conn.up").wait_for()
    await row.click()
    await page.locator('#diagram[data-machine="worker-1"] svg').wait_for(timeout=10_000)

    # add a job from the page; one worker takes it through processing -> finishing -> waiting
    await page.fill("#job-type", "task")
    await page.fill("#job-data", '{"n": 1}')
    await page.click("#add-job-form button[type=submit]")
    busy = page.locator('#kanban .column[data-column="Busy"] .card')
    await busy.first.wait_for(timeout=10_000)
    taker = await busy.first.get_attribute("data-machine")
    assert taker in ("worker-1", "worker-2")
    await page.locator(f'#machines tr[data-name="{taker}"]').click()
    await page.locator('#diagram[data-current="processing"] svg').wait_for(timeout=10_000)
    current = page.locator("#diagram svg g.node.sm-current")
    assert await current.count() == 1
    assert "processing" in (await current.text_content() or "")
    assert "waiting" in (await page.locator("#diagram svg g.node.sm-previous").text_content() or "")
    assert "new_job" in (await page.locator("#diagram .edgeLabel.sm-last").text_content() or "")
    await page.screenshot(path=shot("job-in-progress"), full_page=True)
    await page.locator('#diagram[data-current="waiting"]').wait_for(timeout=10_000)
    assert "finishing --job_done--> waiting" in (await page.text_content("#last-transition") or "")
    await page.locator('#job-counts button[data-status="completed"]', has_text="1").wait_for(
        timeout=10_000
    )
    await page.locator("#jobs tbody tr").first.click()
    await page.locator("#job-detail-title", has_text="completed").wait_for()

    # send an event from the page; its action fails and the error stands out
    await page.select_option("#event-target", "worker-1")
    await page.fill("#event-type", "explode")
    await page.click("#send-event-form button[type=submit]")
    await page.locator("#log li.err", has_text="kaboom").first.wait_for(timeout=10_000)
    await page.locator("#error-count.some").wait_for()
    await page.locator(".toast", has_text="kaboom").first.wait_for()
    await page.screenshot(path=shot("error-shown"), full_page=True)

    # reload keeps recent history
    await page.reload()
    await page.locator("#log li.err", has_text="kaboom").first.wait_for(timeout=10_000)
    assert await page.locator('#log li[data-kind="state_change"]').count() >= 3
    assert page_errors == []


STAYER = """\
name: Stayer
initial_state: fetching
states: [fetching, resting]
actions:
  fetching:
    - {type: bash, command: "echo no route >&2; exit 4"}
transitions:
  - {from: fetching, to: resting, event: job_done}
  - {from: fetching, to: resting, event: skip}
  - {from: resting, to: fetching, event: again}
"""


async def test_a_machine_that_fails_and_stays_is_marked_until_it_moves_on(
    machine: Any, ui_server: Any, browser: Any, shot: Any, store: Any
) -> None:
    stayer = await machine(STAYER, "stayer")
    await stayer.engine.wait_parked(timeout=10)
    page = await browser.new_page(viewport={"width": 1500, "height": 900})
    await page.goto(ui_server.url + "/")
    row = page.locator('#machines tr[data-name="stayer"]')
    await row.locator(".alert-mark:not([hidden])").wait_for(timeout=10_000)
    assert "exit code 4: no route" in (
        await row.locator(".alert-mark").get_attribute("title") or ""
    )
    assert "alerting" in (await row.get_attribute("class") or "")
    await page.screenshot(path=shot("machine-alert"), full_page=True)

    store.send_event("stayer", "skip")
    stayer.engine.wake()
    await row.locator(".state", has_text="resting").wait_for(timeout=10_000)
    await row.locator(".alert-mark[hidden]").wait_for(state="attached", timeout=10_000)
    assert "alerting" not in (await row.get_attribute("class") or "")
