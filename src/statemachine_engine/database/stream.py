"""The realtime stream, written once for every dialect: the change rows the monitoring UI
reads, written in the transaction of the change they describe."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from statemachine_engine.clock import Clock
from statemachine_engine.database.codec import decode, encode, encode_batch
from statemachine_engine.database.records import RealtimeEvent
from statemachine_engine.database.tx import Connection, Row, Tx


def insert_realtime(
    tx: Tx,
    machine: str | None,
    kind: str,
    payload: dict[str, Any],
    now: float,
    *,
    announce: bool = True,
) -> None:
    """Add one stream row inside the caller's transaction (inserted with the transaction's
    other stream rows as it ends); readers are told after it commits (announce=False leaves
    that to the next announcing write: claims, which must never wait for the lock an
    announcement takes on PostgreSQL)."""
    row = {
        "machine": machine,
        "kind": kind,
        "payload": encode(payload, what=f"realtime {kind!r} payload"),
        "created_at": now,
    }
    tx.append("realtime_insert_rows", row)
    if announce:
        tx.stream_changed()


def insert_realtime_many(
    tx: Tx, machine: str | None, kind: str, payloads: list[dict[str, Any]], now: float
) -> None:
    """Add one stream row per payload, in order, with one statement (one encoding of the
    whole list: each row stores its element's compact JSON text)."""
    texts = encode_batch(payloads, what=f"realtime {kind!r} payloads")
    args = {"machine": machine, "kind": kind, "payloads": texts, "created_at": now}
    tx.run("realtime_insert_many", args)
    tx.stream_changed()


def _event(r: Row) -> RealtimeEvent:
    return RealtimeEvent(
        id=r["id"],
        machine_name=r["machine_name"],
        kind=r["kind"],
        payload=decode(r["payload"]),
        created_at=r["created_at"],
    )


@dataclass
class StreamCursor:
    """A reader's place in the stream that never skips a row committed out of id order.

    On PostgreSQL an id is drawn at insert but the row shows at commit, so id N+1 may be seen
    before N. Every writer takes its transaction id before drawing stream ids, so a row not
    yet visible below the highest id read belongs to a transaction that was running (xid below
    the reading snapshot's xmax). Rows are held until a later read's xmin passes that xmax
    (those writers have ended), then released in id order; re-reads skip held ids. SQLite has
    one writer at a time: every read is final at once."""

    floor: int = 0
    held: dict[int, RealtimeEvent] = field(default_factory=dict)
    marks: list[tuple[int, int]] = field(default_factory=list)
    more: bool = False

    def advance(self, rows: list[Row], limit: int) -> list[RealtimeEvent]:
        """Take one `realtime_window` result; return the rows now final, in id order."""
        xmin = xmax = 0
        if rows:
            xmin, xmax = rows[0]["snap_xmin"] or 0, rows[0]["snap_xmax"] or 0
        fresh = [_event(r) for r in rows if r["id"] is not None]
        self.held.update((e.id, e) for e in fresh)
        self.more = len(fresh) >= limit
        covered = fresh[-1].id if self.more else None
        top = max(self.held, default=self.floor) if covered is None else covered
        self.marks.append((top, xmax))
        while self.marks and self.marks[0][1] <= xmin:
            upto = self.marks[0][0] if covered is None else min(self.marks[0][0], covered)
            self.floor = max(self.floor, upto)
            if covered is not None and self.marks[0][0] > covered:
                break
            self.marks.pop(0)
        ready = sorted(i for i in self.held if i <= self.floor)
        return [self.held.pop(i) for i in ready]


class RealtimeStream:
    """`add_realtime`, `realtime_since` and `last_realtime_id` of the Store contract."""

    conn: Connection
    clock: Clock

    def add_realtime(self, machine: str | None, kind: str, payload: dict[str, Any]) -> None:
        now = self.clock.now()
        self.conn.write(lambda tx: insert_realtime(tx, machine, kind, payload, now))

    def realtime_since(self, after_id: int = 0, limit: int = 500) -> list[RealtimeEvent]:
        args = {"after_id": after_id, "limit": limit}
        rows = self.conn.read(lambda tx: tx.query("realtime_since", args))
        return [_event(r) for r in rows]

    def realtime_read(self, cursor: StreamCursor, limit: int = 500) -> list[RealtimeEvent]:
        held = json.dumps(sorted(cursor.held))
        args = {"floor": cursor.floor, "held": held, "limit": limit}
        rows = self.conn.read(lambda tx: tx.query("realtime_window", args))
        return cursor.advance(rows, limit)

    def last_realtime_id(self) -> int:
        row = self.conn.read(lambda tx: tx.query_one("realtime_last_id"))
        return int(row["id"]) if row else 0
