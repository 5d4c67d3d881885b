"""The store behind the UI: one connection used from one worker thread, awaited from asyncio."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from typing import TypeVar

from statemachine_engine.database import Store, open_store

T = TypeVar("T")


class Db:
    """Runs every store call on a private thread so SQLite never blocks the event loop."""

    def __init__(self, url: str | None, *, name: str = "ui-db") -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._store: Store = self._pool.submit(open_store, url).result()
        self.url = self._store.url

    async def call(self, fn: Callable[[Store], T]) -> T:
        """Run `fn(store)` on the store thread and return its result."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, fn, self._store)

    def close(self) -> None:
        self._pool.submit(self._store.close).result()
        self._pool.shutdown(wait=True)
