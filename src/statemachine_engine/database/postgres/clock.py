"""The PostgreSQL server's clock, as every host of a system reads it."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class _Offset(Protocol):
    offset: float


class ServerClock:
    """The database server's time: this host's clock plus the offset measured when the store
    (re)connected. Leases, retry times and timestamps are written and compared on this one
    time line, so a worker whose own clock is minutes off neither steals a live lease nor
    keeps a dead one (RELIABILITY-TESTS #18). Timers within one machine use its own clock."""

    def __init__(self, connection: _Offset) -> None:
        self._connection = connection

    def now(self) -> float:
        return time.time() + self._connection.offset

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    async def sleep_until(self, at: float) -> None:
        await asyncio.sleep(max(0.0, at - self.now()))
