"""Queue actions: check_database_queue, claim_job, complete_job, fail_job."""

from __future__ import annotations

import pytest

from statemachine_engine.errors import ActionError, ConfigError

NO_JOB_TYPE = """
name: any
initial_state: idle
states: [idle, busy]
transitions:
  - {from: idle, to: busy, event: go}
  - {from: busy, to: idle, event: go}
"""


async def test_claim_sets_job_context_and_holds_the_job(make_action, runtime, store, context):
    store.add_job("task", {"path": "/in/a.png"}, job_id="j1")
    action = make_action("type: check_database_queue")
    assert await action.execute(context) == "new_job"
    assert context["job_id"] == "j1"
    assert context["data"] == {"path": "/in/a.png"}
    assert context["current_job"]["id"] == "j1"
    assert context["current_job"]["data"] == {"path": "/in/a.png"}
    assert runtime.job is not None and runtime.job.job_id == "j1"
    assert runtime.job_state == "busy"
    stored = store.get_job("j1")
    assert stored is not None
    assert stored.status == "processing"
    assert stored.lease_owner == runtime.owner


async def test_empty_queue_returns_no_jobs(make_action, runtime, context):
    assert await make_action("type: check_database_queue").execute(context) == "no_jobs"
    assert "job_id" not in context
    assert runtime.job is None


async def test_custom_event_names(make_action, store, context):
    action = make_action("type: check_database_queue\nsuccess: got_one\nempty: idle_again")
    assert await action.execute(context) == "idle_again"
    store.add_job("task", {}, job_id="j1")
    assert await action.execute(context) == "got_one"


async def test_job_type_defaults_to_metadata_job_type(make_action, store, context):
    store.add_job("other", {}, job_id="other-1", priority=1)
    store.add_job("task", {}, job_id="task-1", priority=9)
    assert await make_action("type: check_database_queue").execute(context) == "new_job"
    assert context["job_id"] == "task-1"


async def test_explicit_job_type_wins(make_action, make_runtime, store, context):
    store.add_job("task", {}, job_id="task-1")
    store.add_job("other", {}, job_id="other-1")
    action = make_action("type: check_database_queue\njob_type: other")
    assert await action.execute(context) == "new_job"
    assert context["job_id"] == "other-1"


async def test_without_any_job_type_claims_every_type(make_action, make_runtime, store, context):
    store.add_job("zebra", {}, job_id="z1")
    runtime = make_runtime(NO_JOB_TYPE)
    action = make_action("type: check_database_queue", bound=runtime)
    assert await action.execute(context) == "new_job"
    assert context["job_type"] == "zebra"


async def test_machine_type_filter(make_action, store, context):
    store.add_job("task", {}, job_id="for-cpu", machine_type="cpu", priority=1)
    store.add_job("task", {}, job_id="for-gpu", machine_type="gpu", priority=2)
    action = make_action("type: check_database_queue\nmachine_type: gpu")
    assert await action.execute(context) == "new_job"
    assert context["job_id"] == "for-gpu"


async def test_a_held_job_is_not_claimed_twice(make_action, runtime, store, context):
    store.add_job("task", {}, job_id="j1")
    store.add_job("task", {}, job_id="j2")
    action = make_action("type: check_database_queue")
    await action.execute(context)
    assert await action.execute(context) == "new_job"
    assert runtime.job is not None and runtime.job.job_id == "j1"
    assert store.get_job("j2").status == "pending"  # type: ignore[union-attr]


async def test_job_without_payload_is_claimed(make_action, store, context):
    store.add_job("task", None, job_id="bare")
    assert await make_action("type: check_database_queue").execute(context) == "new_job"
    assert context["job_id"] == "bare"


async def test_claim_job_claims_the_given_id(make_action, runtime, store, context):
    store.add_job("task", {}, job_id="first", priority=1)
    store.add_job("task", {"n": 2}, job_id="second", priority=9)
    context["wanted"] = "second"
    action = make_action("type: claim_job\njob_id: '{wanted}'", keys=["wanted"])
    assert await action.execute(context) == "claimed"  # the released default
    assert context["job_id"] == "second"
    assert runtime.job is not None and runtime.job.job_id == "second"


async def test_claim_job_already_claimed(make_action, store, context):
    store.add_job("task", {}, job_id="j1")
    store.claim_job("task", "someone-else")
    action = make_action("type: claim_job\njob_id: j1")
    assert await action.execute(context) == "already_claimed"
    custom = make_action("type: claim_job\njob_id: j1\nalready_claimed: taken")
    assert await custom.execute(context) == "taken"
    missing = make_action("type: claim_job\njob_id: nope")
    assert await missing.execute(context) == "already_claimed"


async def test_claim_job_while_holding_another_is_an_error(make_action, runtime, store, context):
    store.add_job("task", {}, job_id="j1")
    store.add_job("task", {}, job_id="j2")
    assert await make_action("type: claim_job\njob_id: j1").execute(context) == "claimed"
    assert await make_action("type: claim_job\njob_id: j1").execute(context) == "claimed"
    with pytest.raises(ActionError, match="already holding job 'j1'"):
        await make_action("type: claim_job\njob_id: j2").execute(context)
    assert store.get_job("j2").status == "pending"  # type: ignore[union-attr]


async def test_claim_job_needs_a_job_id(make_action, context):
    with pytest.raises(ConfigError, match="claim_job requires parameter 'job_id'"):
        make_action("type: claim_job")


async def test_complete_job_sets_the_ack(make_action, runtime, store, context):
    store.add_job("task", {}, job_id="j1")
    await make_action("type: check_database_queue").execute(context)
    context["answer"] = {"ok": True}
    action = make_action("type: complete_job\nresult: '{answer}'", keys=["answer"])
    assert await action.execute(context) is None
    ack = runtime.pending.job_ack
    assert ack is not None
    assert (ack.job_id, ack.outcome, ack.result) == ("j1", "completed", {"ok": True})


async def test_fail_job_sets_the_ack_with_backoff(make_action, runtime, store, context):
    store.add_job("task", {}, job_id="j1")
    await make_action("type: check_database_queue").execute(context)
    action = make_action("type: fail_job\nmessage: 'bad input'\nsuccess: failed")
    assert await action.execute(context) == "failed"
    ack = runtime.pending.job_ack
    assert ack is not None
    assert (ack.job_id, ack.outcome, ack.error) == ("j1", "failed", "bad input")
    assert ack.retry_delay == runtime.policy.backoff_base


async def test_fail_job_without_retry_and_default_message(make_action, runtime, store, context):
    store.add_job("task", {}, job_id="j1")
    await make_action("type: check_database_queue").execute(context)
    context["last_error"] = "command exited with code 2"
    await make_action("type: fail_job\nretry: false").execute(context)
    assert runtime.pending.job_ack is not None
    assert runtime.pending.job_ack.error == "command exited with code 2"
    assert runtime.pending.job_ack.retry_delay is None


async def test_complete_and_fail_without_a_job_do_nothing(make_action, runtime, context):
    assert await make_action("type: complete_job").execute(context) is None
    assert await make_action("type: fail_job").execute(context) is None
    assert runtime.pending.job_ack is None
