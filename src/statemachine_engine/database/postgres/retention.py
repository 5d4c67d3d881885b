"""Retention on PostgreSQL: deleting history the user no longer needs."""

from __future__ import annotations

from statemachine_engine.database.postgres.connection import Connection, Tx

_PRUNE = (
    (
        "jobs",
        "DELETE FROM jobs WHERE status IN ('completed', 'cancelled') AND completed_at < %s",
    ),
    (
        "machine_events",
        "DELETE FROM machine_events WHERE status IN ('processed', 'unhandled')"
        " AND processed_at < %s",
    ),
    ("transitions", "DELETE FROM transitions WHERE created_at < %s"),
    ("realtime_events", "DELETE FROM realtime_events WHERE created_at < %s"),
)


class Retention:
    """`prune` for the PostgreSQL store."""

    conn: Connection

    def prune(self, before: float) -> dict[str, int]:
        def work(tx: Tx) -> dict[str, int]:
            deleted: dict[str, int] = {}
            for table, sql in _PRUNE:
                tx.rows(sql, (before,))
                deleted[table] = tx.changes()
            return deleted

        return self.conn.write(work)
