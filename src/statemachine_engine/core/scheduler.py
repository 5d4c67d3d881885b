"""Schedules fired by machine processes (no extra daemon): a machine about to park fires the
ticks that are due and parks no longer than the next one."""

from __future__ import annotations

from statemachine_engine.clock import Clock
from statemachine_engine.database.store import Store


class Ticker:
    """Asks the store to fire due ticks only when the next known tick is due or the safety
    interval has passed (a schedule added or resumed elsewhere is seen then), so an idle
    machine costs one read per safety interval, whatever the number of schedules."""

    def __init__(self, store: Store, clock: Clock, recheck: float) -> None:
        self.store = store
        self.clock = clock
        self.recheck = recheck
        self._next_due: float | None = None
        self._checked_at: float | None = None

    def poll(self) -> float | None:
        """Fire what is due; when to wake for the next tick, on this machine's clock (the
        store's time line may be another host's: the PostgreSQL server's)."""
        now = self.clock.now()
        stale = self._checked_at is None or now - self._checked_at >= self.recheck
        if stale or (self._next_due is not None and self._next_due <= now):
            due = self.store.fire_schedules()
            self._checked_at = now
            self._next_due = None if due is None else now + (due - self.store.clock.now())
        return self._next_due
