"""The realtime stream, written once for every dialect: the change rows the monitoring UI
reads, written in the transaction of the change they describe."""

from __future__ import annotations

from typing import Any

from statemachine_engine.clock import Clock
from statemachine_engine.database.codec import decode, encode, encode_batch
from statemachine_engine.database.records import RealtimeEvent
from statemachine_engine.database.tx import Connection, Tx


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
        return [
            RealtimeEvent(
                id=r["id"],
                machine_name=r["machine_name"],
                kind=r["kind"],
                payload=decode(r["payload"]),
                created_at=r["created_at"],
            )
            for r in rows
        ]

    def last_realtime_id(self) -> int:
        row = self.conn.read(lambda tx: tx.query_one("realtime_last_id"))
        return int(row["id"]) if row else 0
