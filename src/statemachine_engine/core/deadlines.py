"""Deadlines of the state a machine is in — its `timeout(N)` timers and `options.max_dwell` —
kept also while an action runs (DESIGN §13.6). A deadline that falls due mid-action cancels
the action as a stop does (a `bash` command's process group is killed), its result is
discarded and the deadline's transition is taken as a failure outcome. A dwell limit always
raises a `stuck` alert (log WARNING, realtime row), once per state entry."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from statemachine_engine.actions.base import Failure
from statemachine_engine.clock import Clock, iso
from statemachine_engine.config.model import MachineDefinition, Transition
from statemachine_engine.core.transitions import decide, next_timeout
from statemachine_engine.errors import StateMachineError

logger = logging.getLogger(__name__)

#: Realtime stream kind of a dwell alert (the UI and `/metrics` read it).
STUCK_KIND = "stuck"

Record = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class Deadline:
    """When the state's next deadline falls due, the event it fires and its transition
    (None: a dwell limit whose stuck event has no transition here, an alert only)."""

    at: float
    event: str
    transition: Transition | None
    #: The state's `max_dwell` seconds when this is its dwell limit, else None (a timer).
    dwell: float | None = None

    def reason(self, state: str, action: str | None = None) -> str:
        """The error text of the outcome: what fell due and what it interrupted."""
        if self.dwell is None:
            what = f"{self.event} fired in state '{state}'"
        else:
            what = f"max_dwell: stuck in state '{state}' for {self.dwell:g} s ({self.event})"
        return what if action is None else f"{what}; {action} was cancelled"


@dataclass(frozen=True)
class Entry:
    """One entry into a state: the state, the step that entered it, and when (clock time)."""

    state: str
    step: int
    entered_at: float


class Deadlines:
    """The timers and dwell limit of the current state entry, for the loop (before it parks)
    and for a guard that watches one running action."""

    def __init__(
        self, definition: MachineDefinition, machine_name: str, clock: Clock, record: Record
    ) -> None:
        self.definition = definition
        self.machine_name = machine_name
        self.clock = clock
        self._record = record
        self._alerted: tuple[str, int] | None = None

    def dwell(self, entry: Entry) -> Deadline | None:
        """The entry's dwell limit, unless its alert was already raised."""
        seconds = self.definition.max_dwell.get(entry.state)
        if seconds is None or self._alerted == (entry.state, entry.step):
            return None
        event = self.definition.stuck_event
        transition = decide(self.definition, entry.state, event)
        return Deadline(entry.entered_at + seconds, event, transition, seconds)

    def next(self, entry: Entry) -> Deadline | None:
        """The earliest deadline still ahead of the entry: a timer or the dwell limit (on a
        tie the dwell limit, whose alert must not be lost)."""
        timer = next_timeout(self.definition, entry.state, entry.entered_at)
        dwell = self.dwell(entry)
        if timer is None:
            return dwell
        if dwell is not None and dwell.at <= timer[0]:
            return dwell
        return Deadline(timer[0], timer[1].event, timer[1])

    def wake_at(self, entry: Entry) -> float | None:
        """When a parked machine must wake for the dwell limit (its timers are the loop's)."""
        dwell = self.dwell(entry)
        return None if dwell is None else dwell.at

    def stuck(self, entry: Entry, timer_at: float | None) -> Deadline | None:
        """For the loop before it parks: a dwell limit that has come due, no later than the
        state's timer, raises its alert; returned when its stuck event has a transition."""
        dwell = self.dwell(entry)
        if dwell is None or dwell.at > self.clock.now():
            return None
        if timer_at is not None and timer_at < dwell.at:
            return None
        self.alert(entry, dwell)
        return dwell if dwell.transition is not None else None

    def alert(self, entry: Entry, dwell: Deadline) -> None:
        """The stuck alert, once per state entry: a WARNING and a `stuck` realtime row."""
        self._alerted = (entry.state, entry.step)
        fires = dwell.transition is not None
        logger.warning(
            "[%s] stuck: in state %s for %g s (max_dwell), since %s; %s",
            self.machine_name,
            entry.state,
            dwell.dwell or 0.0,
            iso(entry.entered_at),
            f"firing '{dwell.event}'" if fires else f"alert only, no transition on '{dwell.event}'",
        )
        payload: dict[str, Any] = {
            "machine_name": self.machine_name,
            "state": entry.state,
            "seconds": dwell.dwell,
            "since": entry.entered_at,
            "event": dwell.event if fires else None,
        }
        self._record(STUCK_KIND, payload)

    def guard(self, current: asyncio.Future[Any], entry: Entry) -> Guard | None:
        """Watch `current` (one running action) until the entry's next deadline; None when
        the state has none, so actions of states without timers cost nothing extra."""
        if self.next(entry) is None:
            return None
        return Guard(self, current, entry)


class Guard:
    """A task that sleeps on the machine's clock until the entry's next deadline while one
    action runs: a dwell limit raises its alert; a deadline with a transition cancels the
    action and is kept in `fired` for the engine to take."""

    def __init__(self, deadlines: Deadlines, current: asyncio.Future[Any], entry: Entry) -> None:
        self.deadlines = deadlines
        self.current = current
        self.entry = entry
        self.fired: Deadline | None = None
        self._task = asyncio.ensure_future(self._watch())

    async def _watch(self) -> None:
        deadlines, entry = self.deadlines, self.entry
        while (deadline := deadlines.next(entry)) is not None:
            await deadlines.clock.sleep_until(deadline.at)
            if self.current.done():
                return
            if deadline.dwell is not None:
                try:
                    deadlines.alert(entry, deadline)
                except StateMachineError as exc:
                    logger.error(
                        "[%s] could not record the stuck alert: %s", deadlines.machine_name, exc
                    )
                if deadline.transition is None:
                    continue
            if self.current.cancel():
                self.fired = deadline
            return

    def outcome(self, action: str) -> Failure | None:
        """The failure that replaces the cancelled action's result: the deadline's event,
        with a reason naming what fell due and the action it cut short."""
        if self.fired is None:
            return None
        return Failure(self.fired.event, self.fired.reason(self.entry.state, action))

    def close(self) -> None:
        """The action ended: stop watching."""
        self._task.cancel()
