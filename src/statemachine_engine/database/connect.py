"""Choosing a store by URL: `sqlite:///path` (the default) or `postgresql://...`."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from statemachine_engine.clock import Clock
from statemachine_engine.database.sqlite import SQLiteStore
from statemachine_engine.database.store import Store
from statemachine_engine.errors import StoreError

DEFAULT_URL = "sqlite:///./data/statemachine.db"
ENV_VAR = "STATEMACHINE_DB"


def default_url() -> str:
    """`STATEMACHINE_DB` if set, else the embedded SQLite file under ./data."""
    return os.environ.get(ENV_VAR) or DEFAULT_URL


def sqlite_path(url: str) -> str:
    """The file path of a `sqlite://` URL; `sqlite:///rel/x.db` is relative,
    `sqlite:////abs/x.db` absolute; a bare path is accepted as is."""
    if url.startswith("sqlite:///"):
        return url.removeprefix("sqlite:///") or ":memory:"
    if url.startswith("sqlite:"):
        raise StoreError(
            f"bad SQLite URL {url!r}: use sqlite:///relative/path.db or sqlite:////absolute/path.db"
        )
    return url


def open_store(
    url: str | None = None,
    *,
    schema_dirs: Sequence[str | Path] = (),
    clock: Clock | None = None,
    create: bool = True,
) -> Store:
    """Open the store a URL names, applying pending migrations. With create=False a missing
    SQLite file is a StoreError ("no database at ...") and nothing is created."""
    url = url or default_url()
    if url.startswith(("postgresql://", "postgres://")):
        # Imported here: psycopg stays off the start-up path of SQLite users.
        from statemachine_engine.database.postgres import PostgresStore

        return PostgresStore(url, schema_dirs=schema_dirs, clock=clock)
    if "://" in url and not url.startswith("sqlite:"):
        scheme = url.split("://", 1)[0]
        raise StoreError(
            f"unsupported database URL scheme {scheme!r}: use sqlite:///path.db or postgresql://..."
        )
    return SQLiteStore(
        sqlite_path(url), schema_dirs=schema_dirs, clock=clock, url=url, create=create
    )
