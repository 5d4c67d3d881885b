"""Store fixtures: one `store` per backend, on a virtual clock.

A backend is added by one branch in `_open_store` and `_raw_rows` plus its name in BACKENDS.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from statemachine_engine.clock import VirtualClock
from statemachine_engine.database.postgres import PostgresStore
from statemachine_engine.database.postgres import testing as pg_testing
from statemachine_engine.database.sqlite import SQLiteStore
from statemachine_engine.database.store import Store

BACKENDS = ["sqlite", "postgres"]

OpenStore = Callable[..., Store]


def _open_store(
    backend: str, location: Path, clock: VirtualClock, schema_dirs: Sequence[Path]
) -> Store:
    if backend == "sqlite":
        return SQLiteStore(str(location / "store.db"), clock=clock, schema_dirs=schema_dirs)
    if backend == "postgres":
        url = pg_testing.with_schema(pg_testing.check_server(), _pg_schema(location))
        return PostgresStore(url, clock=clock, schema_dirs=schema_dirs)
    raise AssertionError(f"unknown backend {backend!r}")


def _raw_rows(store: Store, sql: str) -> list[dict[str, Any]]:
    if isinstance(store, SQLiteStore):
        return store.conn.rows(sql)
    if isinstance(store, PostgresStore):
        return [dict(row) for row in store.conn.read(lambda tx: tx.rows(sql))]
    raise AssertionError(f"no raw SQL access for {type(store).__name__}")


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def open_store(backend: str, tmp_path: Path, clock: VirtualClock) -> Iterator[OpenStore]:
    """Opens (or reopens) the test's database; every store opened is closed at teardown."""
    opened: list[Store] = []

    def factory(*, schema_dirs: Sequence[Path] = ()) -> Store:
        store = _open_store(backend, tmp_path, clock, schema_dirs)
        opened.append(store)
        return store

    yield factory
    for store in opened:
        store.close()
    if backend == "postgres" and opened:
        pg_testing.drop_schema(
            pg_testing.with_schema(pg_testing.server_url(), _pg_schema(tmp_path))
        )


def _pg_schema(location: Path) -> str:
    """The test's own PostgreSQL schema (one per tmp_path, dropped at teardown)."""
    return "t_" + hashlib.md5(str(location).encode(), usedforsecurity=False).hexdigest()[:20]


@pytest.fixture
def raw_sql() -> Callable[[Store, str], list[dict[str, Any]]]:
    """Runs plain SQL on a store's backend, for checks the Store API does not offer."""
    return _raw_rows


@pytest.fixture
def store(open_store: OpenStore) -> Store:
    return open_store()
