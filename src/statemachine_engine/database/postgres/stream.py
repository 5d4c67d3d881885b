"""The realtime stream on PostgreSQL: the change rows the monitoring UI reads, announced on
the schema's realtime channel in the same transaction."""

from __future__ import annotations

from typing import Any

from statemachine_engine.clock import Clock
from statemachine_engine.database.codec import decode, encode
from statemachine_engine.database.postgres.connection import Channels, Connection, Tx
from statemachine_engine.database.records import RealtimeEvent


def insert_realtime(
    tx: Tx,
    channels: Channels,
    machine: str | None,
    kind: str,
    payload: dict[str, Any],
    now: float,
    *,
    announce: bool = True,
) -> None:
    """Add one stream row inside the caller's transaction; readers are notified once per
    transaction, after it commits. Claims pass announce=False so that a claim never waits
    for a lock (see Tx.notify_after_commit); their rows reach the UI with the next
    announcement, typically the step that follows at once."""
    tx.rows(
        "INSERT INTO realtime_events (machine_name, kind, payload, created_at)"
        " VALUES (%s, %s, %s, %s)",
        (machine, kind, encode(payload, what=f"realtime {kind!r} payload"), now),
    )
    if announce:
        tx.notify_after_commit(channels.realtime)


class RealtimeStream:
    """`add_realtime` and `realtime_since` of the Store contract."""

    conn: Connection
    clock: Clock
    channels: Channels

    def add_realtime(self, machine: str | None, kind: str, payload: dict[str, Any]) -> None:
        now = self.clock.now()
        self.conn.write(lambda tx: insert_realtime(tx, self.channels, machine, kind, payload, now))

    def realtime_since(self, after_id: int = 0, limit: int = 500) -> list[RealtimeEvent]:
        rows = self.conn.read(
            lambda tx: tx.rows(
                "SELECT * FROM realtime_events WHERE id > %s ORDER BY id LIMIT %s",
                (after_id, limit),
            )
        )
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
