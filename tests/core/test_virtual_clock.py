"""The virtual clock as a user's test drives it: moving it right after the machine entered a
state fires that state's timer, whether or not the machine had parked yet."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from statemachine_engine.clock import VirtualClock

StartMachine = Callable[..., Awaitable[Any]]

RESTER = """
name: rester
initial_state: waiting
states: [waiting, resting, done]
actions:
  waiting: [{type: log, message: hi, success: go}]
transitions:
  - {from: waiting, to: resting, event: go}
  - {from: resting, to: done, event: timeout(3600)}
"""


async def test_advancing_right_after_entering_a_state_fires_its_timer(
    machine: StartMachine,
) -> None:
    clock = VirtualClock()
    m = await machine(RESTER, "rester", clock=clock)
    await m.engine.wait_for_state("resting")  # not parked yet: the trap of issue 18
    clock.advance(3600)
    await m.engine.wait_for_state("done", timeout=5)


async def test_advancing_short_of_the_timer_does_not_fire_it(machine: StartMachine) -> None:
    clock = VirtualClock()
    m = await machine(RESTER, "rester", clock=clock)
    await m.engine.wait_for_state("resting")
    clock.advance(3599)
    await m.engine.wait_parked()
    await asyncio.sleep(0.05)
    assert m.engine.state == "resting"
    clock.advance(1)
    await m.engine.wait_for_state("done", timeout=5)


async def test_sleep_until_a_past_time_returns_at_once() -> None:
    clock = VirtualClock()
    clock.advance(10)
    await asyncio.wait_for(clock.sleep_until(clock.now() - 5), 1)
    sleeper = asyncio.ensure_future(clock.sleep_until(clock.now() + 5))
    await asyncio.sleep(0)
    assert not sleeper.done()
    clock.advance(5)
    await asyncio.wait_for(sleeper, 1)
