"""Retention, written once for every dialect: deleting history the user no longer needs."""

from __future__ import annotations

from statemachine_engine.database.tx import Connection, Tx

PRUNED_TABLES = ("jobs", "machine_events", "transitions", "realtime_events")


class Retention:
    """`prune` of the Store contract."""

    conn: Connection

    def prune(self, before: float) -> dict[str, int]:
        def work(tx: Tx) -> dict[str, int]:
            deleted: dict[str, int] = {}
            for table in PRUNED_TABLES:
                tx.run(f"prune_{table}", {"before": before})
                deleted[table] = tx.changes()
            return deleted

        return self.conn.write(work)
