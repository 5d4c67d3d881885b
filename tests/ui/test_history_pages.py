"""The history pages in a real headless Chromium against a real `statemachine-ui` process: a
machine page with its timeline and the replay scrubber, direct loads of /machines/NAME and
/jobs/ID, back and forward, links between the pages and the header's search box."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"

WORKER = """\
name: Worker
initial_state: waiting
states: [waiting, processing, finishing]
events: [new_job, no_jobs, step_done, job_done]
actions:
  waiting:
    - type: check_database_queue
      job_type: task
  processing:
    - type: bash
      command: "echo working on {job_id}"
      success: step_done
  finishing:
    - type: complete_job
      success: job_done
transitions:
  - {from: waiting, to: processing, event: new_job}
  - {from: waiting, to: waiting, event: no_jobs}
  - {from: processing, to: finishing, event: step_done}
  - {from: finishing, to: waiting, event: job_done}
"""


async def screenshot(page: Any, shot: Any, name: str) -> None:
    """Into test-artifacts/ui/; also into docs/images/ with STATEMACHINE_DOCS_SCREENSHOTS=1
    (how the pictures in docs/ui.md are made)."""
    await page.screenshot(path=shot(name), full_page=True)
    if os.environ.get("STATEMACHINE_DOCS_SCREENSHOTS") == "1":
        await page.screenshot(path=str(DOCS_IMAGES / f"{name}.png"), full_page=True)


async def run_jobs(store: Any, worker: Any, until: Any, *job_ids: str) -> None:
    """Enqueue `job_ids` and wait until the worker has completed all of them."""
    for job_id in job_ids:
        store.add_job("task", {"n": job_id}, job_id=job_id)
    worker.engine.wake()

    def done() -> bool:
        return all(store.get_job(j).status == "completed" for j in job_ids)

    await until(done, timeout=20)


async def test_machine_page_timeline_and_scrubber(
    machine: Any, ui_server: Any, browser: Any, shot: Any, store: Any, until: Any
) -> None:
    worker = await machine(WORKER, "worker-1")
    await run_jobs(store, worker, until, "job-a", "job-b")
    page = await browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    # a direct load of the machine's URL shows its page, newest first
    await page.goto(ui_server.url + "/machines/worker-1")
    await page.locator("#machine-page[data-ready]").wait_for(timeout=15_000)
    assert await page.locator("main").is_hidden()
    first = page.locator("#timeline li").first
    assert await first.get_attribute("data-kind") in ("transition", "job")
    assert await page.locator('#timeline li[data-kind="transition"]').count() == 6
    assert await page.locator('#timeline li[data-kind="job"]', has_text="job-a").count() == 2
    diagram = page.locator("#replay-diagram")
    await page.locator('#replay-diagram[data-current="waiting"] svg').wait_for()
    assert "waiting" in (await diagram.locator("g.node.sm-current").text_content() or "")
    assert "job_done" in (await diagram.locator(".edgeLabel.sm-last").text_content() or "")

    # the scrubber, by keyboard: one step back is `finishing`, reached by step_done
    scrubber = page.get_by_label("replay position")
    assert await scrubber.get_attribute("max") == "5"
    await scrubber.focus()
    await page.keyboard.press("ArrowLeft")
    await page.locator('#replay-diagram[data-current="finishing"]').wait_for()
    assert "finishing" in (await diagram.locator("g.node.sm-current").text_content() or "")
    assert "processing" in (await diagram.locator("g.node.sm-previous").text_content() or "")
    assert "step_done" in (await diagram.locator(".edgeLabel.sm-last").text_content() or "")
    assert "processing --step_done--> finishing" in (await page.text_content("#replay-at") or "")
    await page.keyboard.press("Home")
    await page.locator('#replay-diagram[data-current="processing"][data-position="0"]').wait_for()
    assert "job-a" in (await page.text_content("#replay-at") or "")
    assert "null" not in (await page.text_content("#machine-page") or "")
    # the step buttons, and the timeline row of the position is marked
    await page.get_by_role("button", name="step forward").click()
    await page.locator('#replay-diagram[data-current="finishing"][data-position="1"]').wait_for()
    marked = page.locator("#timeline li.replay-at")
    assert "processing --step_done--> finishing" in (await marked.text_content() or "")
    # play runs to the latest transition
    await page.select_option("#replay-speed", "25")
    await page.get_by_role("button", name="play").click()
    await page.locator('#replay-diagram[data-position="5"]').wait_for(timeout=10_000)
    await page.get_by_role("button", name="play").wait_for()
    assert await page.get_attribute("#replay-diagram", "data-current") == "waiting"
    # a transition in the timeline moves the scrubber to it
    await page.locator('#timeline li[data-kind="transition"] button[data-replay]').last.click()
    await page.locator('#replay-diagram[data-position="0"]').wait_for()
    await screenshot(page, shot, "ui-machine")

    # its job link goes to the job page; back returns to the machine page
    await page.locator("#timeline a.job-link", has_text="job-b").first.click()
    await page.wait_for_url(re.compile(r"/jobs/job-b$"))
    await page.locator("#job-page[data-ready]").wait_for(timeout=10_000)
    assert "completed" in (await page.text_content("#job-page h2") or "")
    await page.go_back()
    await page.locator("#machine-page[data-ready]").wait_for(timeout=10_000)
    assert page.url.endswith("/machines/worker-1")
    await page.go_back()  # before the direct load: about:blank
    await page.go_forward()
    await page.locator("#machine-page[data-ready]").wait_for(timeout=10_000)
    assert errors == []


async def test_timeline_pages_older_items_by_cursor(
    machine: Any, ui_server: Any, browser: Any, store: Any, until: Any
) -> None:
    worker = await machine(WORKER, "worker-1")
    await run_jobs(store, worker, until, *[f"job-{n:02}" for n in range(40)])
    page = await browser.new_page(viewport={"width": 1400, "height": 1000})
    await page.goto(ui_server.url + "/machines/worker-1")
    await page.locator("#machine-page[data-ready]").wait_for(timeout=15_000)
    rows = page.locator("#timeline li")
    assert await rows.count() == 100
    scrubber = page.get_by_label("replay position")
    before = int(await scrubber.get_attribute("max") or 0)
    older = page.get_by_role("button", name="older")
    await older.click()
    await page.locator("#timeline li").nth(100).wait_for()
    await older.click()
    await page.locator("#timeline-older[hidden]").wait_for(state="attached", timeout=10_000)
    keys = await rows.evaluate_all("rows => rows.map(r => r.dataset.key)")
    assert len(keys) == len(set(keys)) == 1 + 40 * 5  # started, then per job 3 moves, take, ack
    assert int(await scrubber.get_attribute("max") or 0) == 40 * 3 - 1 > before
    # the position stayed on the same (latest) transition while older ones were added
    assert await page.get_attribute("#replay-diagram", "data-position") == str(40 * 3 - 1)
    assert "all" in (await page.text_content("#timeline-count") or "")


async def test_links_search_and_direct_loads(
    machine: Any, ui_server: Any, browser: Any, store: Any, until: Any
) -> None:
    worker = await machine(WORKER, "worker-1")
    await run_jobs(store, worker, until, "job-1")
    page = await browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(ui_server.url + "/")
    await page.locator("#conn.up").wait_for(timeout=10_000)

    # the jobs list links to the job page
    await page.locator("#jobs a.job-link", has_text="job-1").click()
    await page.wait_for_url(re.compile(r"/jobs/job-1$"))
    await page.locator("#job-page[data-ready]").wait_for(timeout=10_000)
    assert await page.locator("main").is_hidden()
    await page.go_back()
    await page.locator("main").wait_for()
    assert await page.locator("#page").is_hidden()

    # the machines list links to the machine page
    await page.locator('#machines tr[data-name="worker-1"] a.machine-link').click()
    await page.wait_for_url(re.compile(r"/machines/worker-1$"))
    await page.locator("#machine-page[data-ready]").wait_for(timeout=10_000)

    # search: a job id, a machine name, then something that is neither
    search = page.get_by_label("job id or machine name")
    await search.fill("job-1")
    await search.press("Enter")
    await page.wait_for_url(re.compile(r"/jobs/job-1$"))
    await search.fill("worker-1")
    await page.get_by_role("button", name="Go").click()
    await page.wait_for_url(re.compile(r"/machines/worker-1$"))
    await page.locator("#machine-page[data-ready]").wait_for(timeout=10_000)
    await search.fill("nothing-here")
    await search.press("Enter")
    await page.locator("#search-message", has_text="No machine or job named").wait_for()
    assert "nothing-here" in (await page.text_content("#search-message") or "")
    assert page.url.endswith("/machines/worker-1")

    # direct loads: an unknown machine and an unknown job say so
    await page.goto(ui_server.url + "/machines/nobody")
    await page.locator("#page .not-found", has_text="No machine named “nobody”").wait_for()
    await page.goto(ui_server.url + "/jobs/no-such-job")
    await page.locator("#page .not-found", has_text="No job with id “no-such-job”").wait_for()
    await page.goto(ui_server.url + "/jobs/job-1")
    await page.locator("#job-page[data-ready]").wait_for(timeout=10_000)

    # the live page, drawn while hidden behind a directly loaded page, is whole when shown
    await page.get_by_role("link", name="← all jobs").click()
    await page.wait_for_url(re.compile(r"/$"))
    current = page.locator('#diagram[data-machine="worker-1"] svg g.node.sm-current')
    await current.wait_for(timeout=10_000)
    box = await current.bounding_box()
    assert box is not None and box["width"] > 20 and box["height"] > 10
    assert await page.locator("#page").is_hidden()
    assert errors == []


CHECKER = (
    WORKER.replace(
        'command: "echo working on {job_id}"',
        'command: "echo checking {job_id}; '
        'test {job_id} != job-bad || { echo bad input >&2; exit 3; }"',
    )
    .replace("job_done]", "job_done, error]")
    .replace(
        "  - {from: finishing, to: waiting, event: job_done}",
        "  - {from: finishing, to: waiting, event: job_done}\n"
        "  - {from: processing, to: waiting, event: error}",
    )
)


async def test_job_page_from_the_jobs_list_to_the_machine(
    machine: Any, ui_server: Any, browser: Any, shot: Any, store: Any, until: Any
) -> None:
    worker = await machine(CHECKER, "worker-1")
    store.add_job("task", {"n": 1}, job_id="job-bad", max_attempts=1)
    await run_jobs(store, worker, until, "job-ok")
    await until(lambda: store.get_job("job-bad").status == "failed", timeout=20)
    page = await browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(ui_server.url + "/")
    await page.locator("#conn.up").wait_for(timeout=10_000)

    # from the jobs list to the failed job's page: the attempt, its error and its action
    await page.locator("#jobs a.job-link", has_text="job-bad").click()
    await page.wait_for_url(re.compile(r"/jobs/job-bad$"))
    await page.locator("#job-page[data-ready]").wait_for(timeout=10_000)
    attempt = page.locator('#job-page .attempt[data-attempt="1"]')
    assert await attempt.get_attribute("data-outcome") == "failed"
    assert "exit code 3" in (await attempt.locator(".error-block").text_content() or "")
    action = attempt.locator('li.action[data-action="bash"]')
    assert "exit 3" in (await action.text_content() or "")
    command = action.locator("details.command")
    assert await command.get_attribute("open") is not None
    assert "test job-bad != job-bad" in (await command.locator("pre").text_content() or "")
    stderr = action.locator("details.stderr")
    assert await stderr.get_attribute("open") is not None  # a failed command opens its stderr
    assert "bad input" in (await stderr.locator("pre").text_content() or "")
    stdout = action.locator("details.stdout")
    assert await stdout.get_attribute("open") is None
    await stdout.locator("summary").click()
    await stdout.locator("pre", has_text="checking job-bad").wait_for()
    assert "null" not in (await page.text_content("#job-page") or "")
    await screenshot(page, shot, "ui-job")

    # on to the machine that ran the attempt
    await attempt.locator("h4 a.machine-link", has_text="worker-1").click()
    await page.wait_for_url(re.compile(r"/machines/worker-1$"))
    await page.locator("#machine-page[data-ready]").wait_for(timeout=10_000)
    failed = page.locator('#timeline li[data-kind="job"].err', has_text="job-bad")
    assert "exit code 3" in (await failed.text_content() or "")

    # a transition of the completed job opens the machine page at that transition
    await page.goto(ui_server.url + "/jobs/job-ok")
    await page.locator("#job-page[data-ready]").wait_for(timeout=10_000)
    ok = page.locator('#job-page .attempt[data-outcome="completed"]')
    first = ok.locator("li[data-transition]").first
    transition = await first.get_attribute("data-transition")
    assert "waiting --new_job--> processing" in (await first.text_content() or "")
    assert await ok.locator("details.command").count() == 1
    await first.locator("a.machine-link").click()
    await page.wait_for_url(re.compile(rf"/machines/worker-1#transition-{transition}$"))
    await page.locator(f'#replay-diagram[data-transition="{transition}"]').wait_for(timeout=10_000)
    assert await page.get_attribute("#replay-diagram", "data-current") == "processing"
    assert "anchored" in (await page.get_attribute(f"#transition-{transition}", "class") or "")
    assert errors == []
