"""Wake-ups a store can push itself (PostgreSQL LISTEN/NOTIFY). SQLite has none: on one host
the Unix doorbells do this job."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

WakeupCallback = Callable[[dict[str, Any]], object]


class Closeable(Protocol):
    def close(self) -> None: ...


@runtime_checkable
class ListeningStore(Protocol):
    """A store that can call back (from another thread) when something may be waiting."""

    def listen(
        self,
        machine_name: str | None,
        callback: WakeupCallback,
        *,
        jobs: bool = True,
        realtime: bool = False,
    ) -> Closeable: ...


def listen_for_wakeups(
    store: object,
    machine_name: str | None,
    callback: WakeupCallback,
    *,
    jobs: bool = True,
    realtime: bool = False,
) -> Closeable | None:
    """Start the store's wake-ups for machine_name; None when the store has none. Messages
    have the doorbell shape: `{"kind": "event"}`, `{"kind": "job", "job_type": ...}`,
    `{"kind": "realtime"}`, `{"kind": "reconnected"}`."""
    if isinstance(store, ListeningStore):
        return store.listen(machine_name, callback, jobs=jobs, realtime=realtime)
    return None
