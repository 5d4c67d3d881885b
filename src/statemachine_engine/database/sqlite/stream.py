"""The realtime stream on SQLite: the change rows the monitoring UI reads."""

from __future__ import annotations

from typing import Any

from statemachine_engine.clock import Clock
from statemachine_engine.database.codec import decode, encode
from statemachine_engine.database.records import RealtimeEvent
from statemachine_engine.database.sqlite.connection import Connection


def insert_realtime(
    c: Connection, machine: str | None, kind: str, payload: dict[str, Any], now: float
) -> None:
    """Add one stream row inside the caller's transaction."""
    c.rows(
        "INSERT INTO realtime_events (machine_name, kind, payload, created_at) VALUES (?, ?, ?, ?)",
        (machine, kind, encode(payload, what=f"realtime {kind!r} payload"), now),
    )


class RealtimeStream:
    """`add_realtime` and `realtime_since` of the Store contract."""

    conn: Connection
    clock: Clock

    def add_realtime(self, machine: str | None, kind: str, payload: dict[str, Any]) -> None:
        with self.conn.write() as c:
            insert_realtime(c, machine, kind, payload, self.clock.now())

    def realtime_since(self, after_id: int = 0, limit: int = 500) -> list[RealtimeEvent]:
        rows = self.conn.rows(
            "SELECT * FROM realtime_events WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit)
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
