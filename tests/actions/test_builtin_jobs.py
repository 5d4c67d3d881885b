"""get_pending_jobs and wait_for_jobs."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from statemachine_engine.actions.builtin import jobs as jobs_module
from statemachine_engine.errors import ActionError


async def test_get_pending_jobs_lists_in_claim_order_without_claiming(make_action, store, context):
    store.add_job("task", {"n": 1}, job_id="late", priority=5)
    store.add_job("task", {"n": 2}, job_id="urgent", priority=1)
    store.add_job("task", {"n": 3}, job_id="later", priority=5)
    store.add_job("other", {}, job_id="other-type")
    store.add_job("task", {}, job_id="running", priority=0)
    store.claim_job("task", "someone")
    action = make_action("type: get_pending_jobs")
    assert await action.execute(context) == "jobs_found"
    assert [j["id"] for j in context["pending_jobs"]] == ["urgent", "late", "later"]
    assert context["pending_jobs"][0]["data"] == {"n": 2}
    assert all(store.get_job(i).status == "pending" for i in ("urgent", "late", "later"))


async def test_get_pending_jobs_empty_and_custom_names(make_action, store, context):
    action = make_action(
        "type: get_pending_jobs\njob_type: task\nstore_as: todo\nsuccess: some\nempty: none"
    )
    assert await action.execute(context) == "none"
    assert context["todo"] == []
    store.add_job("task", {}, job_id="j1")
    assert await action.execute(context) == "some"
    assert [j["id"] for j in context["todo"]] == ["j1"]


async def test_get_pending_jobs_limit_and_machine_type(make_action, store, context):
    store.add_job("task", {}, job_id="any", priority=3)
    store.add_job("task", {}, job_id="gpu", machine_type="gpu", priority=2)
    store.add_job("task", {}, job_id="cpu", machine_type="cpu", priority=1)
    action = make_action("type: get_pending_jobs\nmachine_type: gpu")
    await action.execute(context)
    assert [j["id"] for j in context["pending_jobs"]] == ["gpu", "any"]
    limited = make_action("type: get_pending_jobs\nlimit: 2")
    await limited.execute(context)
    assert [j["id"] for j in context["pending_jobs"]] == ["cpu", "gpu"]


async def test_get_pending_jobs_reads_every_page(make_action, store, context, monkeypatch):
    monkeypatch.setattr(jobs_module, "_PAGE", 2)
    for n in range(7):
        store.add_job("task", {}, job_id=f"j{n}", priority=7 - n)
    await make_action("type: get_pending_jobs").execute(context)
    assert [j["id"] for j in context["pending_jobs"]] == [f"j{n}" for n in range(6, -1, -1)]


def _finish(store: Any, job_id: str, ok: bool = True) -> None:
    job = store.claim_job(None, "w", job_id=job_id)
    assert job is not None
    if ok:
        store.complete_job(job_id, "w", {"out": job_id})
    else:
        store.fail_job(job_id, "w", "broken")


async def _poll(clock: Any, until: Any, task: asyncio.Future[Any], seconds: float) -> None:
    """Let the action reach its next sleep, then move the clock."""
    calls = clock.calls
    await until(lambda: task.done() or clock.calls > calls)
    clock.advance(seconds)


async def test_wait_for_jobs_waits_until_all_are_finished(
    make_action, store, clock, context, until
):
    for job_id in ("a", "b", "c"):
        store.add_job("task", {}, job_id=job_id, max_attempts=1)
    _finish(store, "a")
    context["spawned"] = ["a", "b", "c"]
    action = make_action(
        "type: wait_for_jobs\njob_ids_key: spawned\npoll_interval: 0.5", keys=["spawned"]
    )
    task = asyncio.ensure_future(action.execute(context))
    await _poll(clock, until, task, 0.5)
    assert not task.done()
    _finish(store, "b")
    _finish(store, "c", ok=False)
    await _poll(clock, until, task, 0.5)
    assert await asyncio.wait_for(task, 5) == "jobs_done"
    assert context["job_results"]["a"] == {
        "status": "completed",
        "result": {"out": "a"},
        "error": None,
    }
    assert context["job_results"]["c"]["status"] == "failed"


async def test_wait_for_jobs_times_out(make_action, store, clock, context, until):
    store.add_job("task", {}, job_id="slow")
    action = make_action(
        "type: wait_for_jobs\njob_ids: [slow]\ntimeout: 2\npoll_interval: 0.5\npending: waiting"
    )
    task = asyncio.ensure_future(action.execute(context))
    for _ in range(4):
        await _poll(clock, until, task, 0.5)
    assert await asyncio.wait_for(task, 5) == "waiting"
    assert clock.calls == 4
    assert context["job_results"]["slow"]["status"] == "pending"


async def test_wait_for_jobs_default_timeout_event(make_action, store, clock, context, until):
    store.add_job("task", {}, job_id="slow")
    action = make_action("type: wait_for_jobs\njob_ids: slow\ntimeout: 1\npoll_interval: 5")
    task = asyncio.ensure_future(action.execute(context))
    await _poll(clock, until, task, 1)
    assert await asyncio.wait_for(task, 5) == "timeout"


async def test_wait_for_jobs_failed_event_and_views(make_action, store, context):
    store.add_job("task", {}, job_id="x", max_attempts=1)
    store.add_job("task", {}, job_id="y", max_attempts=1)
    _finish(store, "x")
    _finish(store, "y", ok=False)
    context["pending_jobs"] = [{"id": "x", "data": {}}, {"job_id": "y"}]
    action = make_action(
        "type: wait_for_jobs\ntracked_jobs_key: pending_jobs\nfailed: some_failed",
        keys=["pending_jobs"],
    )
    assert await action.execute(context) == "some_failed"


async def test_wait_for_jobs_with_nothing_to_wait_for(make_action, context):
    action = make_action("type: wait_for_jobs\nsuccess: nothing_left", keys=["job_ids"])
    context["job_ids"] = []
    assert await action.execute(context) == "nothing_left"


async def test_wait_for_jobs_errors(make_action, context):
    with pytest.raises(ActionError, match="no job with id ghost"):
        await make_action("type: wait_for_jobs\njob_ids: [ghost]").execute(context)
    with pytest.raises(ActionError, match="context has no key 'job_ids'"):
        await make_action("type: wait_for_jobs").execute(context)
    with pytest.raises(ActionError, match="poll_interval"):
        await make_action("type: wait_for_jobs\njob_ids: []\npoll_interval: 0").execute(context)


async def test_wait_for_jobs_is_woken_by_job_news_not_by_polling(
    make_action, store, clock, context, runtime, until
):
    store.add_job("task", {}, job_id="a", max_attempts=1)
    action = make_action("type: wait_for_jobs\njob_ids: [a]")
    task = asyncio.ensure_future(action.execute(context))
    await until(lambda: clock.sleeping == 1)
    _finish(store, "a")
    runtime.job_news.set()
    assert await asyncio.wait_for(task, 5) == "jobs_done"
    assert clock.calls == 1, "woken without the clock moving"


async def test_wait_for_jobs_fails_the_attempt_of_an_expired_holder(
    make_action, store, clock, context, until
):
    store.add_job("task", {}, job_id="a", max_attempts=1)
    assert store.claim_job(None, "gone@host:1", job_id="a", lease_seconds=10) is not None
    clock.advance(11)
    action = make_action("type: wait_for_jobs\njob_ids: [a]")
    assert await asyncio.wait_for(action.execute(context), 5) == "jobs_done"
    job = store.get_job("a")
    assert job is not None and job.status == "failed"
    assert "lease of gone@host:1 expired" in (job.error_message or "")
