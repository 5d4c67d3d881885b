"""What the store's logic needs from a dialect: a transaction that runs named statements
(database/queries.py) and collects wake-ups, and a connection that runs units of work.

The concurrency rule: a store (and so its connection) belongs to one thread at a time —
the machine's event loop thread calls it directly (each call is one short transaction; on
SQLite the busy handler may wait for another process's write lock, on PostgreSQL a call may
wait for a reconnect, both bounded and both cut short by `give_up_waiting` when the machine
stops). Work that must not wait behind the loop (lease renewal, the LISTEN watch) runs on
its own thread: on SQLite with a store of its own; on PostgreSQL on the same store, whose
connection is locked per unit of work (one server connection per process).
"""

from __future__ import annotations

import json
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

    def append(self, name: str, row: Row) -> None:
        """Insert `row` with the named `*_rows` statement when the unit of work ends, just
        before it commits, together with every row appended under that name: one statement
        for all of them, in the order they were appended. For rows nothing in the same
        transaction reads back (history, stream rows)."""
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


class AppendedRows:
    """The rows a transaction's `append` keeps, by statement name, until it ends.

    A `*_rows` statement takes one parameter, `rows`: a JSON array of the row objects (each
    dialect reads it with its own JSON table function), so a step's history and stream rows
    cost one statement per table however many there are."""

    def __init__(self) -> None:
        self.by_name: dict[str, list[Row]] = {}

    def add(self, name: str, row: Row) -> None:
        self.by_name.setdefault(name, []).append(row)

    def insert(self, tx: Tx) -> None:
        """Run each statement once with its rows (names in the order first appended)."""
        for name, rows in self.by_name.items():
            tx.run(name, {"rows": json.dumps(rows, separators=(",", ":"))})
        self.by_name.clear()
