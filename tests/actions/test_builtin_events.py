"""Event actions: check_events, clear_events, send_event."""

from __future__ import annotations

import pytest

from statemachine_engine.errors import ActionError, ConfigError

WITH_CONTEXT_MAP = """
name: listener
initial_state: idle
states: [idle, busy]
events:
  go: {}
  image_ready:
    context_map: {image_path: payload.path, missing_key: payload.nope}
transitions:
  - {from: idle, to: busy, event: go}
  - {from: busy, to: idle, event: image_ready}
"""


async def test_check_events_takes_the_oldest_and_maps_context(
    make_action, make_runtime, store, context
):
    runtime = make_runtime(WITH_CONTEXT_MAP)
    first = store.send_event("worker", "image_ready", {"path": "/img/1.png"}, source="maker")
    store.send_event("worker", "go", None)
    store.send_event("someone_else", "go", None)
    action = make_action("type: check_events", bound=runtime)
    assert await action.execute(context) == "image_ready"
    consumed = runtime.pending.consumed_event
    assert consumed is not None and consumed.id == first.id
    assert context["event_data"]["payload"] == {"path": "/img/1.png"}
    assert context["event_data"]["source"] == "maker"
    assert context["image_path"] == "/img/1.png"
    assert "missing_key" not in context


async def test_check_events_without_events(make_action, runtime, context):
    assert await make_action("type: check_events").execute(context) == "no_events"
    assert await make_action("type: check_events\nempty: quiet").execute(context) == "quiet"
    assert runtime.pending.consumed_event is None


async def test_clear_events_drops_only_this_machines_events(make_action, store, context):
    store.send_event("worker", "go", None)
    store.send_event("worker", "go", None)
    store.send_event("other", "go", None)
    assert await make_action("type: clear_events\nsuccess: cleared").execute(context) == "cleared"
    assert store.next_event("worker") is None
    assert store.next_event("other") is not None


async def test_send_event_forwards_the_payload_with_its_type(make_action, runtime, context):
    context["event_data"] = {"payload": {"items": [1, 2], "nested": {"ok": True}}}
    action = make_action(
        """
        type: send_event
        target_machine: describer
        event_type: describe
        payload: "{event_data.payload}"
        success: sent
        """
    )
    assert await action.execute(context) == "sent"
    [out] = runtime.pending.outbox
    assert out.target_machine == "describer"
    assert out.event_type == "describe"
    assert out.payload == {"items": [1, 2], "nested": {"ok": True}}


async def test_send_event_aliases_are_rendered(make_action, runtime, context):
    context["current_job"] = {"id": "job-9", "data": {"next": "stage2"}}
    action = make_action(
        """
        type: send_event
        target: "{data.next}"
        event: "done_{job_id}"
        payload: {count: 3, label: "job {job_id}"}
        """
    )
    assert await action.execute(context) is None
    [out] = runtime.pending.outbox
    assert (out.target_machine, out.event_type, out.job_id) == ("stage2", "done_job-9", "job-9")
    assert out.payload == {"count": 3, "label": "job job-9"}


async def test_send_event_without_target_is_an_error(make_action, runtime, context):
    with pytest.raises(ConfigError, match="target_machine"):
        make_action("type: send_event\nevent_type: x")
    assert runtime.pending.outbox == []


async def test_send_event_to_an_invalid_machine_name_is_an_error(make_action, runtime, context):
    context["where"] = "../../etc"
    action = make_action("type: send_event\ntarget: '{where}'\nevent: x", keys=["where"])
    with pytest.raises(ActionError, match="invalid machine name"):
        await action.execute(context)
    assert runtime.pending.outbox == []


async def test_the_engine_takes_the_step_and_a_fresh_one_begins(make_action, runtime, context):
    await make_action("type: send_event\ntarget: other\nevent: go").execute(context)
    taken = runtime.take_pending()
    assert [out.event_type for out in taken.outbox] == ["go"]
    assert runtime.pending.empty
