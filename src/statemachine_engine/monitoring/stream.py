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
from statemachine_engine.transport import UI_DOORBELL, Doorbell

log = logging.getLogger(__name__)

FALLBACK_INTERVAL = 0.25
HELD_RECHECK = 0.05
LIVENESS_INTERVAL = 2.0
HISTORY_SIZE = 500
BATCH = 500
CLIENT_QUEUE = 256


def machine_view(m: MachineStatus) -> dict[str, Any]:
    """A machine row for the page: where it is, since when, and whether its process lives."""
    out = m.to_dict()
    out["alive"] = process_alive(m.pid, hostname=m.hostname) if m.status == "running" else False
    return out


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

        def read(store: Store) -> tuple[list[MachineStatus], dict[str, int]]:
            return store.list_machines(), store.count_jobs()

        machines, counts = await self.db.call(read)
        return {
            "type": "snapshot",
            "last_id": self.last_id,
            "machines": [machine_view(m) for m in machines],
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
                events = [event_view(r) for r in rows]
                self.last_id = rows[-1].id
                self.history.extend(events)
                self.broadcast({"type": "events", "events": events})
                pushed += len(rows)
            if not cursor.more:
                return pushed

    async def _check_liveness(self) -> None:
        machines = await self.db.call(lambda s: s.list_machines())
        alive = {m.machine_name: machine_view(m)["alive"] for m in machines}
        if self._alive and alive != self._alive:
            changed = [
                machine_view(m)
                for m in machines
                if self._alive.get(m.machine_name) != alive[m.machine_name]
            ]
            self.broadcast({"type": "machines", "machines": changed})
        self._alive = alive

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
