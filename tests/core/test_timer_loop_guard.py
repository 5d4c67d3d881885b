"""A timer that is already due when the machine would wait fires without waiting: such steps
count toward `options.max_instant_steps`, so a timer loop that never waits ends in
`loop_detected` (DESIGN §13.4) instead of spinning. A timer that really waits is no loop."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

import pytest

from statemachine_engine.actions.base import BaseAction
from statemachine_engine.clock import VirtualClock
from statemachine_engine.core import ActionLoader
from statemachine_engine.database.sqlite import SQLiteStore

StartMachine = Callable[..., Awaitable[Any]]
CLOCK = VirtualClock()


class SlowTickAction(BaseAction):
    """An instant action that takes (virtual) longer than the state's timer."""

    provides: ClassVar[frozenset[str] | None] = frozenset()
    instant: ClassVar[bool] = True

    async def execute(self, context: dict[str, Any]) -> str | None:
        CLOCK.advance(1.0)
        return None


class Loader(ActionLoader):
    def names(self) -> frozenset[str]:
        return super().names() | {"slow_tick"}

    def resolve(self, action_type: str) -> type[BaseAction]:
        return SlowTickAction if action_type == "slow_tick" else super().resolve(action_type)


SPINNER = """
name: spinner
initial_state: a
options: {max_instant_steps: 40}
actions:
  a: [{type: slow_tick}]
transitions:
  - {from: a, to: a, event: "timeout(0.5)"}
"""


def history(store: SQLiteStore, name: str) -> list[str | None]:
    return [r.event for r in reversed(store.history(machine=name, limit=5000))]


async def test_a_timer_that_fires_without_waiting_counts_toward_the_loop_guard(
    machine: StartMachine, store: SQLiteStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="statemachine_engine")
    m = await machine(SPINNER, "spinner", clock=CLOCK, loader=Loader())
    await m.engine.wait_for(
        lambda: any("loop_detected" in r.getMessage() for r in caplog.records), timeout=20
    )
    events = history(store, "spinner")
    fired = [e for e in events if e == "timeout(0.5)"]
    assert 40 <= len(fired) <= 45, len(fired)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("a --timeout(0.5)--> a" in e for e in errors), errors


async def test_the_shortest_timer_that_waits_is_not_a_loop(
    machine: StartMachine, store: SQLiteStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="statemachine_engine")
    text = """
name: ticker
initial_state: a
options: {max_instant_steps: 5}
transitions:
  - {from: a, to: a, event: "timeout(0.001)"}
"""
    m = await machine(text, "ticker")
    await m.engine.wait_for(lambda: len(history(store, "ticker")) >= 30, timeout=20)
    assert not [r for r in caplog.records if "loop_detected" in r.getMessage()]
