"""Choosing a store by URL: `sqlite:///path` (the default) or `postgresql://...`."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from statemachine_engine.clock import Clock
from statemachine_engine.database.sqlite import SQLiteStore
from statemachine_engine.database.sqlite.legacy import notice_legacy_neighbour
from statemachine_engine.database.store import Store
from statemachine_engine.errors import StoreError

if TYPE_CHECKING:
    from statemachine_engine.database.postgres import PostgresStore

DEFAULT_URL = "sqlite:///./data/statemachine.db"
ENV_VAR = "STATEMACHINE_DB"
POSTGRES_MISSING = (
    "PostgreSQL support is not installed: pip install 'statemachine-engine[postgres]'"
)


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


def _postgres_store_class() -> type[PostgresStore]:
    """PostgresStore, imported on first use: psycopg is the optional `postgres` extra and
    stays off the start-up path of SQLite users."""
    try:
        from statemachine_engine.database.postgres import PostgresStore
    except ModuleNotFoundError as exc:
        if exc.name != "psycopg" and not (exc.name or "").startswith("psycopg."):
            raise
        raise StoreError(POSTGRES_MISSING) from exc
    return PostgresStore


def check_backend(url: str | None = None) -> None:
    """Raise StoreError now when the store `url` names cannot be loaded (psycopg missing),
    so a command that starts servers or child processes fails with one line up front."""
    url = url or default_url()
    if url.startswith(("postgresql://", "postgres://")):
        _postgres_store_class()


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
        return _postgres_store_class()(url, schema_dirs=schema_dirs, clock=clock)
    if "://" in url and not url.startswith("sqlite:"):
        scheme = url.split("://", 1)[0]
        raise StoreError(
            f"unsupported database URL scheme {scheme!r}: use sqlite:///path.db or postgresql://..."
        )
    path = sqlite_path(url)
    notice_legacy_neighbour(path)
    return SQLiteStore(path, schema_dirs=schema_dirs, clock=clock, url=url, create=create)
