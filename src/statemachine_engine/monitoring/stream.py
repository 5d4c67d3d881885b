"""The live stream: tail `realtime_events` with a `StreamCursor` (every row once, in id
order, also rows committed out of id order on PostgreSQL) and push them to every client.

Machines ring the UI's doorbell (`statemachine-ui`) after each commit, which wakes the tailer
at once; a short fallback interval covers machines on other hosts and lost doorbells. The
database stays the source of truth: a doorbell only says "look now".
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from statemachine_engine.database import Store
from statemachine_engine.database.liveness import process_alive
from statemachine_engine.database.records import MachineStatus, RealtimeEvent
from statemachine_engine.database.stream import StreamCursor
from statemachine_engine.errors import StateMachineError
from statemachine_engine.monitoring.db import Db
from statemachine_engine.monitoring.health import (
    Health,
    HealthLog,
    machine_health,
    overdue_by_machine,
)
from statemachine_engine.transport import UI_DOORBELL, Doorbell

log = logging.getLogger(__name__)

FALLBACK_INTERVAL = 0.25
HELD_RECHECK = 0.05
LIVENESS_INTERVAL = 2.0
HISTORY_SIZE = 500
BATCH = 500
CLIENT_QUEUE = 256


def machine_view(m: MachineStatus, health: Health | None = None) -> dict[str, Any]:
    """A machine row for the page: where it is, since when, whether its process lives (pid
    and start time, so a reused pid or an unreaped zombie is not alive) and its health."""
    out = m.to_dict()
    alive = process_alive(m.pid, m.pid_start, m.hostname) if m.status == "running" else False
    out["alive"] = alive
    if health is not None:
        out["health"] = health.to_dict()
    return out


HealthInputs = tuple[list[MachineStatus], dict[str, tuple[str, float]], float]


def health_inputs(store: Store) -> HealthInputs:
    """What machine health needs from the database: the machine rows, the overdue leases
    by machine and the store's time."""
    leases = overdue_by_machine(store.overdue_leases())
    return store.list_machines(), leases, store.clock.now()


def event_view(e: RealtimeEvent) -> dict[str, Any]:
    return e.to_dict()


@dataclass(eq=False)
class Client:
    """One WebSocket subscriber: a bounded queue; overflowing it marks the client as too slow."""

    queue: asyncio.Queue[dict[str, Any]] = field(
        default_factory=lambda: asyncio.Queue(CLIENT_QUEUE)
    )
    overflowed: bool = False

    def push(self, message: dict[str, Any]) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.overflowed = True
            with contextlib.suppress(asyncio.QueueFull):
                self.queue.get_nowait()
                self.queue.put_nowait({"type": "overflow"})


def _last_id(store: Store) -> int:
    """The newest realtime id, found with O(log n) `realtime_since` probes (any backend)."""
    if not store.realtime_since(0, 1):
        return 0
    lo, hi = 0, 1  # invariant: the newest id is > lo and, once found, <= hi
    while store.realtime_since(hi, 1):
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if store.realtime_since(mid, 1):
            lo = mid
        else:
            hi = mid
    return hi


class Hub:
    """Owns the tailer task and the set of connected clients."""

    def __init__(
        self,
        db: Db,
        *,
        fallback_interval: float = FALLBACK_INTERVAL,
        doorbell_name: str | None = UI_DOORBELL,
    ) -> None:
        self.db = db
        self.fallback_interval = fallback_interval
        self.doorbell_name = doorbell_name
        self.clients: set[Client] = set()
        self.history: collections.deque[dict[str, Any]] = collections.deque(maxlen=HISTORY_SIZE)
        self.last_id = 0
        self.cursor = StreamCursor()
        self.wakeups = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._doorbell: Any = None
        self._alive: dict[str, Any] = {}
        self.health_log = HealthLog()
        self._next_liveness = 0.0

    async def start(self) -> None:
        last = await self.db.call(_last_id)
        self.cursor = StreamCursor(floor=max(0, last - HISTORY_SIZE))
        self.last_id = self.cursor.floor
        await self.poll_once()
        if self.doorbell_name:
            bell = Doorbell(self.doorbell_name, lambda _msg: self.wake())
            try:
                await bell.start()
            except StateMachineError as exc:
                log.warning(
                    "no doorbell, falling back to polling every %ss: %s",
                    self.fallback_interval,
                    exc,
                )
            else:
                self._doorbell = bell
        self._task = asyncio.create_task(self._run(), name="ui-tailer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._doorbell is not None:
            self._doorbell.close()
            self._doorbell = None
        for client in list(self.clients):
            client.push({"type": "bye"})

    def wake(self) -> None:
        self.wakeups += 1
        self._wake.set()

    def subscribe(self) -> Client:
        client = Client()
        self.clients.add(client)
        return client

    def unsubscribe(self, client: Client) -> None:
        self.clients.discard(client)

    def broadcast(self, message: dict[str, Any]) -> None:
        for client in list(self.clients):
            client.push(message)

    async def snapshot(self) -> dict[str, Any]:
        """Machines, job counts and recent history: what a late client needs before the stream."""

        def read(store: Store) -> tuple[HealthInputs, dict[str, int]]:
            return health_inputs(store), store.count_jobs()

        inputs, counts = await self.db.call(read)
        return {
            "type": "snapshot",
            "last_id": self.last_id,
            "machines": self.views(*inputs),
            "job_counts": counts,
            "history": list(self.history),
        }

    async def poll_once(self) -> int:
        """Read and push every row after `last_id`; return how many were pushed."""
        pushed = 0
        cursor = self.cursor
        while True:
            rows = await self.db.call(lambda s: s.realtime_read(cursor, BATCH))
            if rows:
                for r in rows:
                    self.health_log.feed(r.machine_name, r.kind, r.payload, r.created_at)
                events = [event_view(r) for r in rows]
                self.last_id = rows[-1].id
                self.history.extend(events)
                self.broadcast({"type": "events", "events": events})
                pushed += len(rows)
            if not cursor.more:
                return pushed

    async def machine_views(self) -> list[dict[str, Any]]:
        """Every machine as the page shows it, with its health."""
        machines, overdue, now = await self.db.call(health_inputs)
        return self.views(machines, overdue, now)

    def views(
        self, machines: list[MachineStatus], overdue: dict[str, tuple[str, float]], now: float
    ) -> list[dict[str, Any]]:
        """Machine rows with liveness and health (on the loop, where the health log is fed)."""
        views = []
        for m in machines:
            view = machine_view(m)
            health = machine_health(m, view["alive"], self.health_log, overdue, now)
            view["health"] = health.to_dict()
            views.append(view)
        return views

    async def _check_liveness(self) -> None:
        views = await self.machine_views()
        seen = {v["machine_name"]: (v["alive"], v["health"]["kind"]) for v in views}
        # A machine first seen here is pushed as well: it may have died between a client's
        # snapshot and this check, and no later check would tell that client otherwise.
        changed = [
            v for v in views if self._alive.get(v["machine_name"]) != seen[v["machine_name"]]
        ]
        if changed:
            self.broadcast({"type": "machines", "machines": changed})
        self._alive = seen

    async def _run(self) -> None:
        while True:
            try:
                await self.poll_once()
                if time.monotonic() >= self._next_liveness:
                    self._next_liveness = time.monotonic() + LIVENESS_INTERVAL
                    await self._check_liveness()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("realtime tail failed: %s", exc)
            # rows held back for a writer still open are re-read soon, not at the fallback
            wait = min(self.fallback_interval, HELD_RECHECK) if self.cursor.held else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait or self.fallback_interval)
            self._wake.clear()
