"""`sleep` waits on the machine's clock."""

from __future__ import annotations

import asyncio


async def test_sleep_waits_for_the_clock(make_action, clock, context, until):
    action = make_action("type: sleep\nseconds: 5\nsuccess: rested")
    task = asyncio.ensure_future(action.execute(context))
    await until(lambda: clock.sleeping == 1)
    clock.advance(4.9)
    await asyncio.sleep(0)
    assert not task.done()
    clock.advance(0.1)
    assert await asyncio.wait_for(task, 5) == "rested"


async def test_duration_alias_and_no_event_by_default(make_action, clock, context, until):
    action = make_action("type: sleep\nduration: 2")
    task = asyncio.ensure_future(action.execute(context))
    await until(lambda: clock.sleeping == 1)
    clock.advance(2)
    assert await asyncio.wait_for(task, 5) is None


async def test_seconds_from_a_placeholder(make_action, clock, context, until):
    context["delay"] = 3
    action = make_action("type: sleep\nseconds: '{delay}'", keys=["delay"])
    task = asyncio.ensure_future(action.execute(context))
    await until(lambda: clock.sleeping == 1)
    clock.advance(3)
    assert await asyncio.wait_for(task, 5) is None
