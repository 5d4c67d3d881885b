"""The log contract of a lost PostgreSQL connection (docs/postgresql.md): whatever the
connection was doing when it broke — a query, a write before COMMIT, the COMMIT itself —
the store logs `connection lost (…); reconnecting` once and `reconnected after N s` once."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from statemachine_engine.database.postgres import PostgresStore

LOGGER = "statemachine_engine.database.postgres.connection"


@pytest.fixture
def backend() -> str:
    return "postgres"


@pytest.fixture
def pg(open_store: Any) -> Iterator[PostgresStore]:
    store = open_store()
    assert isinstance(store, PostgresStore)
    yield store


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER]


def assert_contract(messages: list[str]) -> None:
    lost = [m for m in messages if "connection lost (" in m and m.endswith("reconnecting")]
    back = [m for m in messages if ": reconnected after " in m]
    assert len(lost) == 1 and len(back) == 1, messages


def kill_own_backend(store: PostgresStore) -> None:
    """Make the store's next statement find its connection terminated by the server."""
    pid = store.conn.read(lambda tx: tx.one("SELECT pg_backend_pid() AS pid"))["pid"]
    with psycopg.connect(store.conn.target.conninfo, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


def test_a_read_on_a_terminated_connection(
    pg: PostgresStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    kill_own_backend(pg)
    assert pg.count_jobs()["pending"] == 0
    assert_contract(lines(caplog))


def test_a_write_on_a_terminated_connection(
    pg: PostgresStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    kill_own_backend(pg)
    pg.add_job("t", {}, job_id="j1")
    assert [j.job_id for j in pg.list_jobs()] == ["j1"]
    assert_contract(lines(caplog))


@pytest.mark.parametrize("committed", [True, False])
def test_a_connection_lost_during_commit(
    pg: PostgresStore,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    committed: bool,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    real = psycopg.Cursor.execute
    broken: list[bool] = []

    def execute(self: psycopg.Cursor[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
        if query == "COMMIT" and not broken:
            broken.append(True)
            if committed:
                real(self, query, *args, **kwargs)
            self.connection.close()  # the reply never arrives
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return real(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", execute)
    pg.add_job("t", {}, job_id="j1")
    assert broken
    assert [j.job_id for j in pg.list_jobs()] == ["j1"]
    messages = lines(caplog)
    assert_contract(messages)
    outcome = "committed" if committed else "aborted"
    assert any("during COMMIT" in m and m.endswith(outcome) for m in messages), messages
