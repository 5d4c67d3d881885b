"""Leases renewed off the event loop, and a watch that reports a blocked loop.

Concurrency rule (docs/decisions.md): the engine's store calls run on the event loop thread
and may block it (a locked SQLite file, a PostgreSQL reconnect), as may an action that does
blocking work. Nothing that must keep time depends on that thread: the lease of the held job
is renewed by `LeaseKeeper` from its own thread on its own store connection, and a signal
sets a stop deadline at which every store call that waits for the database gives up
(`Store.give_up_waiting`), whichever thread it blocks.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable

from statemachine_engine.core.runtime import Runtime
from statemachine_engine.database.records import Job
from statemachine_engine.database.store import Store
from statemachine_engine.errors import StateMachineError

logger = logging.getLogger(__name__)

#: How often the loop watch looks at the clock, and how late it may be before it warns.
STALL_TICK = 0.5
STALL_WARNING = 1.0


class LeaseKeeper:
    """Renews the lease of the job `runtime` holds every heartbeat period, from a thread of
    its own, on a store connection of its own (opened at the first renewal, so a machine that
    never holds a job long never opens it) or, with `owns_store=False`, on the machine's
    store (PostgreSQL: one connection per process; a renewal then waits at most for the
    loop's unit of work in progress). An action that blocks the loop does not delay a
    renewal. A lease found taken by another worker is reported on the loop: `lease_lost` is
    set there and `on_lost` called."""

    def __init__(
        self,
        runtime: Runtime,
        open_store: Callable[[], Store],
        on_lost: Callable[[Job], None],
        loop: asyncio.AbstractEventLoop,
        *,
        owns_store: bool = True,
    ) -> None:
        self.runtime = runtime
        self._open_store = open_store
        self._owns_store = owns_store
        self._on_lost = on_lost
        self._loop = loop
        self._store: Store | None = None
        self._give_up_at: float | None = None
        self._closed = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"lease-{runtime.machine_name}", daemon=True
        )
        #: Renewals done (for tests and the bench).
        self.renewals = 0

    def start(self) -> None:
        self._thread.start()

    def give_up_waiting(self, at: float) -> None:
        """A renewal waiting for the database gives up at monotonic time `at` (stopping)."""
        self._give_up_at = at
        store = self._store
        if store is not None:
            store.give_up_waiting(at)

    def close(self) -> None:
        """Stop renewing; waits for a renewal in progress until the stop deadline at most."""
        self._closed.set()
        if not self._thread.is_alive():
            return
        wait = 1.0 if self._give_up_at is None else self._give_up_at - time.monotonic()
        self._thread.join(timeout=max(wait, 0.0) + 0.2)

    def _period(self) -> float:
        return self.runtime.policy.renewal_period(self.runtime.job)

    def _run(self) -> None:
        due = time.monotonic()
        try:
            while True:
                # A fixed schedule: a renewal that waited for a lock does not push the next.
                due = max(due + self._period(), time.monotonic())
                if self._closed.wait(due - time.monotonic()):
                    return
                job = self.runtime.job
                if job is None or self.runtime.lease_lost:
                    continue
                if self._renew(job) is False:
                    self._loop.call_soon_threadsafe(self._lost, job)
        except RuntimeError:
            pass  # the loop closed under us: the machine has ended
        finally:
            if self._store is not None and self._owns_store:
                self._store.close()

    def _renew(self, job: Job) -> bool | None:
        """Renew `job`'s lease: True if still ours, False if taken, None when the database
        could not be asked (logged; the next period tries again)."""
        runtime = self.runtime
        renewing = runtime.clock.now()
        try:
            if self._store is None:
                self._store = self._open_store()
                if self._give_up_at is not None:
                    self._store.give_up_waiting(self._give_up_at)
            lease = runtime.policy.lease_for(job.job_type)
            alive = self._store.heartbeat(job.job_id, runtime.owner, lease)
        except StateMachineError as exc:
            if not self._closed.is_set():
                logger.warning("[%s] heartbeat failed: %s", runtime.machine_name, exc)
            return None
        self.renewals += 1
        if alive and runtime.job is job:
            runtime.lease_renewed_at = renewing
        return alive

    def _lost(self, job: Job) -> None:
        """On the loop: the lease of `job` was taken (ignored when the job was meanwhile
        acknowledged or released: the renewal raced with its end)."""
        if self.runtime.job is job and not self.runtime.lease_lost:
            self.runtime.lease_lost = True
            self._on_lost(job)


class StallWatch:
    """Logs "event loop blocked for N s" (WARNING) after the loop could not run for more
    than STALL_WARNING seconds: an action or a store call held it. N is a lower bound (up to
    STALL_TICK less than the stall); `where(since, until)` names what held the loop between
    those monotonic times (it was free at `since`). It looks every STALL_TICK seconds while
    the machine works
    and not at all while it is parked (an idle machine costs no wake-ups); a stall that
    starts as the machine wakes is measured from the wake-up."""

    def __init__(self, machine_name: str, where: Callable[[float, float], str]) -> None:
        self.machine_name = machine_name
        self.where = where
        self._awake = asyncio.Event()
        self._awake.set()
        self._woke_at = 0.0

    def parked(self) -> None:
        self._awake.clear()

    def unparked(self) -> None:
        if not self._awake.is_set():
            self._woke_at = asyncio.get_running_loop().time()
            self._awake.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if self._awake.is_set():
                free = loop.time()
                due = free + STALL_TICK
                await asyncio.sleep(STALL_TICK)
            else:
                await self._awake.wait()
                free = due = self._woke_at
            now = loop.time()
            late = now - due
            if late >= STALL_WARNING:
                logger.warning(
                    "[%s] event loop blocked for %.1f s %s",
                    self.machine_name,
                    late,
                    self.where(free, now),
                )
