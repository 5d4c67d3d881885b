"""Events across crashes at engine level (DESIGN §13.5): the event whose handling a run did
not finish is `handling` on disk, handed to the next run (counted, up to the limit) or given
back uncounted by a clean stop; the real kill -9 is in tests/reliability/test_delivery.py."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

import pytest

from statemachine_engine.actions.base import BaseAction
from statemachine_engine.core import ActionLoader
from statemachine_engine.core.interpolate import render_value
from statemachine_engine.database.records import MAX_EVENT_DELIVERIES, MachineEvent
from statemachine_engine.database.sqlite import SQLiteStore

StartMachine = Callable[..., Awaitable[Any]]
Until = Callable[..., Awaitable[None]]


class HangAction(BaseAction):
    """Records the delivery it runs for, then waits until the test lets it finish."""

    provides: ClassVar[frozenset[str] | None] = frozenset()
    seen: ClassVar[list[tuple[int, int]]] = []
    gate: ClassVar[asyncio.Event | None] = None

    async def execute(self, context: dict[str, Any]) -> str | None:
        event = context["event_data"]
        type(self).seen.append((event["id"], render_value("{event.delivery}", context)))
        gate = type(self).gate
        assert gate is not None
        await gate.wait()
        return "done"


class Loader(ActionLoader):
    def names(self) -> frozenset[str]:
        return super().names() | {"hang"}

    def resolve(self, action_type: str) -> type[BaseAction]:
        return HangAction if action_type == "hang" else super().resolve(action_type)


HANDLER = """
name: handler
initial_state: idle
states: [idle, busy, resting]
events: [go, done, rest]
actions:
  busy: [{type: hang}]
transitions:
  - {from: idle, to: busy, event: go}
  - {from: busy, to: idle, event: done}
  - {from: idle, to: resting, event: rest}
  - {from: resting, to: idle, event: go}
"""


@pytest.fixture(autouse=True)
def fresh_hang() -> None:
    HangAction.seen = []
    HangAction.gate = asyncio.Event()


@pytest.fixture
def start(machine: StartMachine) -> StartMachine:
    async def starter(**options: Any) -> Any:
        return await machine(HANDLER, "handler", loader=Loader(), **options)

    return starter


def stored(store: SQLiteStore, event_id: int) -> MachineEvent:
    [event] = [e for e in store.list_events(target="handler") if e.id == event_id]
    return event


async def die_mid_handling(m: Any, until: Until) -> None:
    """Stop the machine as a kill -9 would leave it: the event in hand is not given back."""
    await until(lambda: HangAction.seen and m.engine.state == "busy")
    m.engine.runtime.release_event = lambda: None
    await m.stop()


async def test_the_event_is_in_hand_until_the_next_step_ends_its_handling(
    start: StartMachine, store: SQLiteStore, until: Until
) -> None:
    m = await start()
    go = store.send_event("handler", "go")
    m.engine.wake()
    await until(lambda: HangAction.seen)
    assert stored(store, go.id).status == "handling", "on disk before the action runs"
    assert HangAction.gate is not None
    HangAction.gate.set()
    await m.engine.wait_for(lambda: m.engine.state == "idle" and m.engine.parked)
    assert (stored(store, go.id).status, stored(store, go.id).deliveries) == ("processed", 1)


async def test_a_state_that_parks_ends_the_handling_at_the_park(
    start: StartMachine, store: SQLiteStore, until: Until
) -> None:
    m = await start()
    rest = store.send_event("handler", "rest")
    m.engine.wake()
    await m.engine.wait_for(lambda: m.engine.state == "resting" and m.engine.parked)
    assert stored(store, rest.id).status == "processed"


async def test_a_run_that_died_mid_handling_hands_the_event_to_the_next_run(
    start: StartMachine, store: SQLiteStore, until: Until
) -> None:
    go = store.send_event("handler", "go")
    later = store.send_event("handler", "go")
    await die_mid_handling(await start(), until)
    assert stored(store, go.id).status == "handling"

    second = await start()
    await until(lambda: len(HangAction.seen) == 2)
    assert HangAction.seen == [(go.id, 1), (go.id, 2)], "first in line, before the later one"
    event = stored(store, go.id)
    assert (event.status, event.deliveries) == ("handling", 2)
    assert event.error_message is not None and "while handling it" in event.error_message
    assert HangAction.gate is not None
    HangAction.gate.set()
    await until(lambda: stored(store, later.id).status == "processed")
    assert stored(store, go.id).status == "processed"
    deliveries = [
        (r.event_id, r.event_delivery) for r in reversed(store.history(machine="handler"))
    ]
    assert [d for d in deliveries if d[0] is not None] == [(go.id, 1), (go.id, 2), (later.id, 1)]
    kinds = [r.kind for r in store.realtime_since() if r.kind == "event_interrupted"]
    assert kinds == ["event_interrupted"]
    await second.stop()


async def test_an_event_interrupted_every_time_fails_for_good(
    start: StartMachine, store: SQLiteStore, until: Until
) -> None:
    go = store.send_event("handler", "go")
    for delivery in range(1, MAX_EVENT_DELIVERIES + 1):
        await die_mid_handling(await start(), until)
        assert HangAction.seen[-1] == (go.id, delivery)
        HangAction.seen.clear()
    m = await start()
    await m.engine.wait_parked()
    event = stored(store, go.id)
    assert (event.status, event.deliveries) == ("failed", MAX_EVENT_DELIVERIES)
    assert event.error_message is not None
    assert event.error_message.startswith(f"interrupted {MAX_EVENT_DELIVERIES} times")
    assert HangAction.seen == [] and m.engine.state == "idle"


async def test_a_clean_stop_gives_the_event_back_uncounted(
    start: StartMachine, store: SQLiteStore, until: Until
) -> None:
    go = store.send_event("handler", "go")
    m = await start()
    await until(lambda: HangAction.seen)
    assert await m.stop() == 0
    event = stored(store, go.id)
    assert (event.status, event.deliveries, event.error_message) == ("pending", 0, None)

    await start()
    await until(lambda: len(HangAction.seen) == 2)
    assert HangAction.seen == [(go.id, 1), (go.id, 1)]
    assert [r for r in store.realtime_since() if r.kind == "event_interrupted"] == []


async def test_an_event_leading_to_a_final_state_ends_handled(
    machine: StartMachine, store: SQLiteStore
) -> None:
    quit_event = store.send_event("ender", "quit")
    m = await machine(
        """
name: ender
initial_state: idle
states: [idle, gone]
events: [quit]
actions:
  gone: [{type: log, message: bye}]
transitions:
  - {from: idle, to: gone, event: quit}
""",
        "ender",
    )
    assert await asyncio.wait_for(m.task, 5) == 0
    [event] = store.list_events(target="ender")
    assert (event.id, event.status, event.deliveries) == (quit_event.id, "processed", 1)


async def test_an_event_taken_by_check_events_is_in_hand_the_same_way(
    machine: StartMachine, store: SQLiteStore, until: Until
) -> None:
    m = await machine(
        """
name: poller
initial_state: polling
states: [polling, busy]
events: [go, done, no_events]
actions:
  polling: [{type: check_events}]
  busy: [{type: hang}]
transitions:
  - {from: polling, to: polling, event: no_events}
  - {from: polling, to: busy, event: go}
  - {from: busy, to: polling, event: done}
""",
        "poller",
        loader=Loader(),
    )
    await m.engine.wait_parked()
    go = store.send_event("poller", "go")
    m.engine.wake()
    await until(lambda: HangAction.seen)
    [event] = store.list_events(target="poller")
    assert (event.id, event.status) == (go.id, "handling")
    assert HangAction.gate is not None
    HangAction.gate.set()
    await until(lambda: store.list_events(target="poller")[0].status == "processed")
