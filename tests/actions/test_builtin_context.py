"""`set_context`."""

from __future__ import annotations

import pytest

from statemachine_engine.errors import ActionError, ConfigError


async def test_key_and_value_keep_the_type(make_action, context):
    context["current_job"] = {"id": "j1", "data": {"count": 3, "tags": ["a"]}}
    action = make_action("type: set_context\nkey: total\nvalue: '{data.count}'\nsuccess: set")
    assert await action.execute(context) == "set"
    assert context["total"] == 3


async def test_values_mapping(make_action, context):
    context["current_job"] = {"id": "j1", "data": {"tags": ["a", "b"]}}
    action = make_action(
        """
        type: set_context
        values: {tags: "{data.tags}", label: "job {id}", fixed: 5}
        """
    )
    assert await action.execute(context) is None
    assert context["tags"] == ["a", "b"]
    assert context["label"] == "job j1"
    assert context["fixed"] == 5


async def test_context_is_an_alias_of_values(make_action, context):
    await make_action("type: set_context\ncontext: {mode: fast}").execute(context)
    assert context["mode"] == "fast"


async def test_value_defaults_to_none(make_action, context):
    await make_action("type: set_context\nkey: cleared").execute(context)
    assert context["cleared"] is None


async def test_bad_parameters(make_action, context):
    with pytest.raises(ConfigError, match="'values' of set_context must be a mapping"):
        make_action("type: set_context\nvalues: [1, 2]")
    with pytest.raises(ConfigError, match="set_context requires `key` or `values`"):
        make_action("type: set_context")
    context["v"] = [1, 2]
    with pytest.raises(ActionError, match="mapping"):
        await make_action("type: set_context\nvalues: '{v}'", keys=["v"]).execute(context)
