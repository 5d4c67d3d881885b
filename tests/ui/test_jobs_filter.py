"""The jobs list filtered by status over a queue holding every status: the API returns only
the jobs in that status, and a click on a status tab in Chromium shows only those."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from statemachine_engine.database.sqlite import SQLiteStore

EXPECTED = {
    "pending": {"p1", "p2", "p3"},
    "processing": {"r1", "r2"},
    "completed": {"c1", "c2"},
    "failed": {"f1", "f2"},
    "cancelled": {"x1"},
}


def seed(store: SQLiteStore) -> None:
    """Ten jobs, in every status, added in an order that mixes them."""
    for job_id in ["c1", "p1", "f1", "r1", "x1", "c2", "p2", "f2", "r2", "p3"]:
        store.add_job("task", {"n": job_id}, job_id=job_id, max_attempts=1)
    for job_id in ["c1", "c2", "f1", "f2", "r1", "r2"]:
        job = store.claim_job("task", "owner", job_id=job_id)
        assert job is not None
    for job_id in ["c1", "c2"]:
        assert store.complete_job(job_id, "owner")
    for job_id in ["f1", "f2"]:
        assert store.fail_job(job_id, "owner", "broken") == "failed"
    store.cancel_job("x1")


@pytest.mark.parametrize("status", sorted(EXPECTED))
def test_api_lists_only_the_jobs_in_a_status(
    store: SQLiteStore, ui_server: Any, status: str
) -> None:
    seed(store)
    page = httpx.get(f"{ui_server.url}/api/jobs", params={"status": status}, timeout=10).json()
    assert {j["job_id"] for j in page["jobs"]} == EXPECTED[status]
    assert {j["status"] for j in page["jobs"]} == {status}
    assert page["total"] == len(EXPECTED[status])
    everything = httpx.get(f"{ui_server.url}/api/jobs", timeout=10).json()
    assert len(everything["jobs"]) == everything["total"] == 10


def test_api_refuses_an_unknown_status(store: SQLiteStore, ui_server: Any) -> None:
    reply = httpx.get(f"{ui_server.url}/api/jobs", params={"status": "done"}, timeout=10)
    assert reply.status_code == 422


async def test_a_status_tab_shows_only_its_jobs(
    store: SQLiteStore, ui_server: Any, browser: Any, shot: Any
) -> None:
    seed(store)
    page = await browser.new_page(viewport={"width": 1400, "height": 900})
    page_errors: list[str] = []
    page.on("pageerror", lambda exc: page_errors.append(str(exc)))
    await page.goto(ui_server.url + "/")
    rows = page.locator("#jobs tbody tr")
    await page.locator('#jobs tbody tr[data-job="p3"]').wait_for(timeout=10_000)
    assert await rows.count() == 10

    for status in ["failed", "pending", "completed", "cancelled", "processing"]:
        await page.locator(f'#job-counts button[data-status="{status}"]').click()
        await page.locator(f'#job-counts button.active[data-status="{status}"]').wait_for()
        await page.wait_for_function(
            "n => document.querySelectorAll('#jobs tbody tr').length === n",
            arg=len(EXPECTED[status]),
            timeout=10_000,
        )
        shown = await rows.evaluate_all("rs => rs.map(r => [r.dataset.job, r.cells[2].innerText])")
        assert {job for job, _ in shown} == EXPECTED[status]
        assert {text for _, text in shown} == {status}
    await page.screenshot(path=shot("jobs-filter-processing"))

    await page.locator('#job-counts button[data-status="all"]').click()
    await page.locator('#jobs tbody tr[data-job="c1"]').wait_for(timeout=10_000)
    assert await rows.count() == 10
    assert page_errors == []
