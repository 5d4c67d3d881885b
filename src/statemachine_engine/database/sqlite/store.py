"""The store on SQLite: one connection per process, every write in BEGIN IMMEDIATE."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from statemachine_engine.clock import Clock, SystemClock
from statemachine_engine.database.migrations import builtin_migrations, directory_migrations
from statemachine_engine.database.sqlite.connection import Connection
from statemachine_engine.database.sqlite.jobs import JobQueue
from statemachine_engine.database.sqlite.machines import MachineLog
from statemachine_engine.database.sqlite.retention import Retention
from statemachine_engine.database.sqlite.stream import RealtimeStream


class SQLiteStore(JobQueue, MachineLog, RealtimeStream, Retention):
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
        self.refused_names: set[str] = set()
        self.conn = Connection(path, migrations, create=create)
        self.created = self.conn.created

    def close(self) -> None:
        self.conn.close()

    def give_up_waiting(self, at: float | None) -> None:
        self.conn.give_up_waiting(at)
