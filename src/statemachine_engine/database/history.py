"""A machine's history, written once for every dialect: one timeline merged from the tables
that already hold it (transitions, events received and sent, and the stream rows for jobs
taken and given back, errors, starts and stops), paged newest first by a cursor.

The order is total: time, then source, then the row's id. A cursor is the key of the last
item a page returned, so each page asks every source only for what comes after it: an item
is on exactly one page however the sources interleave, and rows added meanwhile (newer)
never shift a later page."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from statemachine_engine.database.codec import decode
from statemachine_engine.database.tx import Connection, Row, Tx
from statemachine_engine.errors import StoreError

MAX_TIMELINE_LIMIT = 500
_ID_MAX = 2**62


class CursorError(StoreError):
    """A timeline cursor that this store did not hand out."""


@dataclass(frozen=True, order=True)
class TimelineKey:
    """Where an item stands in a timeline: time, source rank, row id (newest is largest)."""

    at: float
    rank: int
    id: int

    def encode(self) -> str:
        return f"{self.at!r}:{self.rank}:{self.id}"

    @classmethod
    def decode(cls, text: str) -> TimelineKey:
        """The key in a cursor `encode` made; CursorError naming the text otherwise."""
        parts = text.split(":")
        try:
            at, rank, row_id = float(parts[0]), int(parts[1]), int(parts[2])
        except (ValueError, IndexError):
            raise CursorError(f"cursor {text[:80]!r} is not time:source:id") from None
        if len(parts) != 3 or not math.isfinite(at) or rank not in _RANKS or row_id < 0:
            raise CursorError(f"cursor {text[:80]!r} is not time:source:id")
        return cls(at, rank, row_id)


def _transition(row: Row) -> dict[str, Any]:
    return {
        "kind": "transition",
        "from_state": row["from_state"],
        "to_state": row["to_state"],
        "event": row["event"],
        "job_id": row["job_id"],
        "event_id": row["event_id"],
        "event_delivery": row["event_delivery"],
        "step": row["step"],
    }


def _event(kind: str) -> Callable[[Row], dict[str, Any]]:
    def item(row: Row) -> dict[str, Any]:
        return {
            "kind": kind,
            "event": row["event_type"],
            "source": row["source_machine"],
            "target": row["target_machine"],
            "job_id": row["job_id"],
            "status": row["status"],
            "deliveries": row["deliveries"],
            "error": row["error_message"],
        }

    return item


def _notice(row: Row) -> dict[str, Any]:
    """A stream row as a timeline item: `job` (taken, completed, failed, given back),
    `error` (a failure, an unhandled or interrupted event) or `machine` (started, stopped)."""
    kind = str(row["kind"])
    payload = decode(row["payload"])
    p: dict[str, Any] = payload if isinstance(payload, dict) else {}
    if kind == "job":
        return {
            "kind": "job",
            "job_id": p.get("job_id"),
            "status": p.get("status"),
            "attempt": p.get("attempt"),
            "error": p.get("error"),
        }
    if kind in ("machine_started", "machine_stopped"):
        return {
            "kind": "machine",
            "what": kind.removeprefix("machine_"),
            "state": p.get("state"),
            "status": p.get("status"),
            "pid": p.get("pid"),
        }
    return {
        "kind": "error",
        "what": kind,
        "state": p.get("state"),
        "event": p.get("event"),
        "event_id": p.get("event_id"),
        "error": p.get("error"),
    }


@dataclass(frozen=True)
class _Source:
    rank: int
    statement: str
    item: Callable[[Row], dict[str, Any]]


# Rank orders sources at equal times, oldest first: a machine starts, an event arrives, the
# step it causes moves the machine, then sends and acknowledges.
_SOURCES = (
    _Source(1, "timeline_events_received", _event("event_received")),
    _Source(2, "timeline_transitions", _transition),
    _Source(3, "timeline_events_sent", _event("event_sent")),
    _Source(4, "timeline_notices", _notice),
)
_RANKS = {s.rank for s in _SOURCES}


@dataclass(frozen=True)
class TimelinePage:
    """Items newest first, and the cursor of the next (older) page, None at the start."""

    items: list[dict[str, Any]]
    before: str | None


class MachineHistory:
    """`machine_timeline` of the Store contract."""

    conn: Connection

    def machine_timeline(
        self, name: str, *, before: str | None = None, limit: int = 100
    ) -> TimelinePage:
        if not 1 <= limit <= MAX_TIMELINE_LIMIT:
            raise StoreError(f"timeline limit {limit} is not between 1 and {MAX_TIMELINE_LIMIT}")
        cursor = TimelineKey.decode(before) if before is not None else None
        return self.conn.read(lambda tx: _page(tx, name, cursor, limit))


def _page(tx: Tx, name: str, cursor: TimelineKey | None, limit: int) -> TimelinePage:
    keyed: list[tuple[TimelineKey, dict[str, Any]]] = []
    for source in _SOURCES:
        args = {"machine": name, "limit": limit + 1, **_bounds(source.rank, cursor)}
        for row in tx.query(source.statement, args):
            key = TimelineKey(float(row["created_at"]), source.rank, int(row["id"]))
            keyed.append((key, {**source.item(row), "at": key.at, "id": row["id"]}))
    keyed.sort(key=lambda pair: pair[0], reverse=True)
    more = len(keyed) > limit
    page = keyed[:limit]
    for key, item in page:
        item["key"] = key.encode()
    return TimelinePage([item for _, item in page], page[-1][0].encode() if more else None)


def _bounds(rank: int, cursor: TimelineKey | None) -> dict[str, Any]:
    """The statement's `at` and `id` for rows of a source of `rank` strictly after `cursor`
    in newest-first order: an earlier time, or the same time and (for this source) a
    lower id; at the cursor's time every row of a lower rank and none of a higher one."""
    if cursor is None:
        return {"at": math.inf, "id": _ID_MAX}
    if rank < cursor.rank:
        row_id = _ID_MAX
    elif rank == cursor.rank:
        row_id = cursor.id
    else:
        row_id = -1
    return {"at": cursor.at, "id": row_id}
