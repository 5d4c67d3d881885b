"""`log` and `activity_log`."""

from __future__ import annotations

import logging


async def test_log_renders_the_message_at_its_level(make_action, runtime, context, caplog):
    context["current_job"] = {"id": "j7"}
    action = make_action("type: log\nmessage: 'working on {id}'\nlevel: warning\nsuccess: logged")
    with caplog.at_level(logging.DEBUG, logger="statemachine_engine.log"):
        assert await action.execute(context) == "logged"
    [record] = [r for r in caplog.records if r.name == "statemachine_engine.log"]
    assert record.levelno == logging.WARNING
    assert record.getMessage() == "[worker] working on j7"
    assert runtime.pending.realtime == []


async def test_log_returns_nothing_by_default(make_action, context):
    assert await make_action("type: log\nmessage: hi").execute(context) is None


async def test_activity_log_goes_to_the_realtime_feed(make_action, runtime, context, caplog):
    context["current_job"] = {"id": "j8"}
    action = make_action("type: activity_log\nmessage: 'done {id}'\nlevel: success")
    with caplog.at_level(logging.INFO, logger="statemachine_engine.log"):
        assert await action.execute(context) is None
    assert runtime.pending.realtime == [
        ("activity", {"machine_name": "worker", "message": "done j8", "level": "success"})
    ]
    assert "done j8" in caplog.text
