"""The store on SQLite: one connection per process, every write in BEGIN IMMEDIATE, the
workers of a job made runnable woken by their doorbells after the commit."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from statemachine_engine.clock import Clock, SystemClock
from statemachine_engine.database.migrations import builtin_migrations, directory_migrations
from statemachine_engine.database.sqlite.connection import Connection
from statemachine_engine.database.sqlstore import SQLStore
from statemachine_engine.errors import StateMachineError
from statemachine_engine.transport import ring_all

log = logging.getLogger(__name__)


def ring_workers(job_types: list[str]) -> None:
    """Wake the machines of this host about runnable jobs; the rows are committed, so a
    doorbell that cannot be rung only delays a worker until its safety re-check."""
    for job_type in job_types:
        try:
            woken = ring_all({"kind": "job", "job_type": job_type})
        except (StateMachineError, ValueError, OSError) as exc:
            log.warning("could not ring doorbells: %s", exc)
            return
        log.debug("doorbell rung job_type=%s machines=%d", job_type, woken)


class SQLiteStore(SQLStore):
    """Store implementation on one SQLite file (see database.store.Store for the contract)."""

    def __init__(
        self,
        path: str,
        *,
        schema_dirs: Sequence[str | Path] = (),
        clock: Clock | None = None,
        url: str | None = None,
        create: bool = True,
    ) -> None:
        migrations = builtin_migrations("sqlite")
        for directory in schema_dirs:
            migrations.extend(directory_migrations(directory))
        self.path = path
        self.url = url or f"sqlite:///{path}"
        self.clock = clock or SystemClock()
        self.refused_names = set()
        self.conn = Connection(path, migrations, create=create)
        self.conn.on_commit = ring_workers
        self.created = self.conn.created
