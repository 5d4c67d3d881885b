"""Waiting without polling: where a machine parks, and conditions callers can await."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from statemachine_engine.clock import Clock

Watcher = tuple[Callable[[], bool], "asyncio.Future[None]"]


class Parking:
    """A parked machine waits for a doorbell (`ring`), its timer, a job retry coming due,
    or the slow safety re-check, whichever comes first; all on the machine's clock."""

    def __init__(self, clock: Clock, safety_interval: float, on_change: Callable[[], None]):
        self.clock = clock
        self.safety_interval = safety_interval
        self.parked = False
        self.retry_at: float | None = None
        self._rung = False
        self._wake: asyncio.Future[None] | None = None
        self._on_change = on_change

    def ring(self) -> None:
        """Wake the machine, or make its next park return at once."""
        self.parked = False
        self._rung = True
        _resolve(self._wake)

    @property
    def settled(self) -> bool:
        """Parked, and nothing (doorbell, timer, clock move) has woken it since."""
        return self.parked and not self._rung and not (self._wake is not None and self._wake.done())

    def clear(self) -> None:
        """Forget doorbells so far: the caller is about to look at everything anyway."""
        self._rung = False

    def retry_due(self, at: float) -> None:
        """Look again at `at`: a failed job becomes claimable then, and no doorbell says so."""
        self.retry_at = at if self.retry_at is None else min(self.retry_at, at)

    async def park(self, timer_due: float | None) -> None:
        """Wait until rung, `timer_due`, the retry time or the safety interval. A doorbell
        resolves the future the machine awaits directly: one loop turn from datagram to
        work."""
        if self._rung:
            return
        # An absolute wake-up time: whoever moves a virtual clock past it, before or after
        # the sleeper starts, wakes the machine.
        until = self.clock.now() + self.safety_interval
        for due in (timer_due, self.retry_at):
            if due is not None:
                until = min(until, due)
        wake = self._wake = asyncio.get_running_loop().create_future()
        sleeper = asyncio.ensure_future(self.clock.sleep_until(until))
        sleeper.add_done_callback(lambda _: _resolve(wake))
        try:
            await asyncio.sleep(0)  # let the sleeper start before the machine counts as parked
            if not wake.done():
                self.parked = True
                self._on_change()
            await wake
        finally:
            self.parked = False
            self._wake = None
            sleeper.cancel()
        if self.retry_at is not None and self.retry_at <= self.clock.now():
            self.retry_at = None


def _resolve(future: asyncio.Future[None] | None) -> None:
    if future is not None and not future.done():
        future.set_result(None)


class Conditions:
    """Predicates awaited by callers, re-checked synchronously at every `notify()`, so a
    condition that holds only for a moment (a state passed through) is still seen."""

    def __init__(self) -> None:
        self._watchers: list[Watcher] = []
        self._closed: str | None = None

    async def wait(
        self, predicate: Callable[[], bool], timeout: float, describe: Callable[[], Any]
    ) -> None:
        """Return once `predicate()` holds; TimeoutError (with `describe()`) after `timeout`."""
        if predicate():
            return
        if self._closed is not None:
            raise RuntimeError(f"{self._closed} before the condition held: {describe()}")
        watcher: Watcher = (predicate, asyncio.get_running_loop().create_future())
        self._watchers.append(watcher)
        try:
            await asyncio.wait_for(watcher[1], timeout)
        except TimeoutError:
            raise TimeoutError(f"condition not met within {timeout} s: {describe()}") from None
        finally:
            self._watchers.remove(watcher)

    def notify(self) -> None:
        """Re-check every waiting predicate; one that raises passes the error to its waiter."""
        for predicate, future in list(self._watchers):
            if future.done():
                continue
            try:
                if predicate():
                    future.set_result(None)
            except Exception as exc:
                future.set_exception(exc)

    def close(self, reason: str) -> None:
        """Nothing will change any more: fail every waiter whose predicate does not hold."""
        self.notify()
        self._closed = reason
        for _, future in self._watchers:
            if not future.done():
                future.set_exception(RuntimeError(f"{reason} before the condition held"))
