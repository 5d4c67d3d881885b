"""The store on PostgreSQL: one connection per store (work and LISTEN), one schema per URL
(`?schema=`), wake-ups and realtime announcements over LISTEN/NOTIFY."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from statemachine_engine.clock import Clock, SystemClock
from statemachine_engine.database.migrations import builtin_migrations, directory_migrations
from statemachine_engine.database.postgres.clock import ServerClock
from statemachine_engine.database.postgres.connection import Connection, parse_url
from statemachine_engine.database.postgres.listener import Hub, Listener
from statemachine_engine.database.sqlstore import SQLStore


class PostgresStore(SQLStore):
    """Store implementation on a PostgreSQL schema (see database.store.Store for the contract)."""

    def __init__(
        self,
        url: str,
        *,
        schema_dirs: Sequence[str | Path] = (),
        clock: Clock | None = None,
    ) -> None:
        migrations = builtin_migrations("postgres")
        for directory in schema_dirs:
            migrations.extend(directory_migrations(directory))
        self.url = url
        self.target = parse_url(url)
        self.schema = self.target.schema
        self.refused_names = set()
        self.conn = Connection(self.target, migrations)
        self.channels = self.conn.channels
        self.hub = Hub(self.conn)
        # Every host reads the server's time for leases and timestamps; an injected clock
        # (a test's virtual one) is used as given.
        real = clock is None or isinstance(clock, SystemClock)
        self.clock: Clock = ServerClock(self.conn) if real or clock is None else clock

    def listen(
        self,
        machine_name: str | None,
        callback: Callable[[dict[str, Any]], object],
        *,
        jobs: bool = True,
        realtime: bool = False,
    ) -> Listener:
        """Call `callback(message)` for every wake-up (from the thread that reads it off the
        store's connection: this store's caller, or the thread that watches the idle
        connection; one connection for work and LISTEN): events for
        machine_name (`{"kind": "event"}`), runnable jobs (`{"kind": "job", "job_type": t}`),
        committed realtime rows (`{"kind": "realtime"}`) and `{"kind": "reconnected"}` after
        a lost connection. LISTEN is in place when this returns."""
        channels: list[tuple[str, str]] = []
        if machine_name is not None:
            channels.append((self.channels.machine(machine_name), "event"))
        if jobs:
            channels.append((self.channels.jobs, "job"))
        if realtime:
            channels.append((self.channels.realtime, "realtime"))
        return self.hub.add(dict(channels), callback)

    def close(self) -> None:
        for listener in list(self.hub.listeners):
            listener.close()
        super().close()
