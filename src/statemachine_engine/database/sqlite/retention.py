"""Retention on SQLite: deleting history the user no longer needs."""

from __future__ import annotations

from statemachine_engine.database.sqlite.connection import Connection

_PRUNE = (
    (
        "jobs",
        "DELETE FROM jobs WHERE status IN ('completed', 'cancelled') AND completed_at < ?",
    ),
    (
        "machine_events",
        "DELETE FROM machine_events WHERE status IN ('processed', 'unhandled')"
        " AND processed_at < ?",
    ),
    ("transitions", "DELETE FROM transitions WHERE created_at < ?"),
    ("realtime_events", "DELETE FROM realtime_events WHERE created_at < ?"),
)


class Retention:
    """`prune` for the SQLite store."""

    conn: Connection

    def prune(self, before: float) -> dict[str, int]:
        deleted: dict[str, int] = {}
        with self.conn.write() as c:
            for table, sql in _PRUNE:
                c.rows(sql, (before,))
                deleted[table] = c.changes()
        return deleted
