"""Retention, written once for every dialect: deleting history the user no longer needs."""

from __future__ import annotations

from statemachine_engine.database.tx import Connection, Tx

#: In this order: a job's attempts go after the job, their actions after the attempts.
PRUNED_TABLES = (
    "jobs",
    "machine_events",
    "transitions",
    "realtime_events",
    "job_attempts",
    "job_actions",
)


class _RolledBack(Exception):
    """Ends a dry run's transaction with a rollback, carrying the counts it saw."""

    def __init__(self, counts: dict[str, int]) -> None:
        super().__init__("dry run")
        self.counts = counts


class Retention:
    """`prune` of the Store contract."""

    conn: Connection

    def prune(self, before: float, *, dry_run: bool = False) -> dict[str, int]:
        # A dry run runs the very same deletes and rolls them back, so its counts cannot
        # drift from what a real prune would delete.
        def work(tx: Tx) -> dict[str, int]:
            deleted: dict[str, int] = {}
            for table in PRUNED_TABLES:
                tx.run(f"prune_{table}", {"before": before})
                deleted[table] = tx.changes()
            if dry_run:
                raise _RolledBack(deleted)
            return deleted

        try:
            return self.conn.write(work)
        except _RolledBack as done:
            return done.counts
