"""add_to_list and pop_from_list."""

from __future__ import annotations

import pytest

from statemachine_engine.errors import ActionError


async def test_add_creates_and_appends_keeping_types(make_action, context):
    context["current_job"] = {"id": "j1", "data": {"size": 3}}
    add_id = make_action("type: add_to_list\nlist_key: spawned\nvalue: '{id}'\nsuccess: added")
    add_size = make_action("type: add_to_list\nlist_key: spawned\nvalue: '{data.size}'")
    assert await add_id.execute(context) == "added"
    assert await add_size.execute(context) is None
    assert context["spawned"] == ["j1", 3]


async def test_add_unique(make_action, context):
    action = make_action("type: add_to_list\nlist_key: seen\nvalue: a\nunique: true")
    await action.execute(context)
    await action.execute(context)
    assert context["seen"] == ["a"]


async def test_pop_takes_the_first_item(make_action, context):
    context["queue"] = ["a", {"b": 1}, "c"]
    action = make_action(
        "type: pop_from_list\nlist_key: queue\nstore_as: next_item\nsuccess: got",
        keys=["queue"],
    )
    assert await action.execute(context) == "got"
    assert context["next_item"] == "a"
    assert await action.execute(context) == "got"
    assert context["next_item"] == {"b": 1}
    assert context["queue"] == ["c"]


async def test_pop_last_and_default_key(make_action, context):
    context["queue"] = [1, 2, 3]
    action = make_action("type: pop_from_list\nlist_key: queue\nposition: last", keys=["queue"])
    assert await action.execute(context) is None
    assert context["popped_item"] == 3
    assert context["queue"] == [1, 2]


async def test_pop_empty_or_missing(make_action, context):
    action = make_action("type: pop_from_list\nlist_key: queue")
    assert await action.execute(context) == "list_empty"
    context["queue"] = []
    custom = make_action("type: pop_from_list\nlist_key: queue\nempty: drained", keys=["queue"])
    assert await custom.execute(context) == "drained"
    assert "popped_item" not in context


async def test_a_non_list_is_an_error(make_action, context):
    context["queue"] = "abc"
    with pytest.raises(ActionError, match="not a list"):
        await make_action("type: pop_from_list\nlist_key: queue", keys=["queue"]).execute(context)
    with pytest.raises(ActionError, match="not a list"):
        await make_action("type: add_to_list\nlist_key: queue\nvalue: 1", keys=["queue"]).execute(
            context
        )
