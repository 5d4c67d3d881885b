"""What the store's logic needs from a dialect: a transaction that runs named statements
(database/queries.py) and collects wake-ups, and a connection that runs units of work.

The concurrency rule: a store (and so its connection) belongs to one thread at a time —
the machine's event loop thread calls it directly (each call is one short transaction; on
SQLite the busy handler may wait for another process's write lock, on PostgreSQL a call may
wait for a reconnect, both bounded and both cut short by `give_up_waiting` when the machine
stops). Work that must not wait behind the loop (lease renewal, LISTEN) opens a store or a
connection of its own on its own thread.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
Row = dict[str, Any]
NO_ARGS: Mapping[str, Any] = {}


class Tx(Protocol):
    """One transaction of a unit of work."""

    def query(self, name: str, args: Mapping[str, Any] = NO_ARGS) -> list[Row]:
        """Run the named statement; its rows (none for a statement without RETURNING)."""
        ...

    def run(self, name: str, args: Mapping[str, Any] = NO_ARGS) -> None:
        """Run the named statement without waiting for its result (PostgreSQL sends it with
        the next statement whose result is read: one round trip for several statements)."""
        ...

    def query_one(self, name: str, args: Mapping[str, Any] = NO_ARGS) -> Row | None:
        """The first row of the named statement, or None."""
        ...

    def changes(self) -> int:
        """Rows changed by the last statement (run or query)."""
        ...

    def wake_jobs(self, job_type: str) -> None:
        """Workers of `job_type` are woken once this transaction commits (never before)."""
        ...

    def wake_machine(self, name: str) -> None:
        """Machine `name` (an event for it) is woken once this transaction commits."""
        ...

    def stream_changed(self) -> None:
        """Readers of the realtime stream are told after this transaction commits."""
        ...


class Connection(Protocol):
    """Runs units of work, each one transaction (retried as the dialect allows)."""

    def read(self, work: Callable[[Tx], T]) -> T: ...

    def write(self, work: Callable[[Tx], T]) -> T: ...

    def close(self) -> None: ...

    def give_up_waiting(self, at: float | None) -> None: ...
