"""Fixtures for the monitoring server: a seeded store and a TestClient on loopback, and for
the tests that run on both backends, `url` (a SQLite file, then a fresh PostgreSQL schema)
with the `store` open on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from statemachine_engine.config.loader import parse_definition
from statemachine_engine.core import ActionLoader
from statemachine_engine.database import Store, open_store
from statemachine_engine.database.postgres import testing as pg_testing
from statemachine_engine.database.records import Step
from statemachine_engine.database.sqlite import SQLiteStore
from statemachine_engine.monitoring import UiConfig, create_app

WORKER = """\
name: Worker
initial_state: waiting
template: true
states: [waiting, processing, done]
groups: {Busy: [processing]}
events: [new_job, job_done, stop]
transitions:
  - {from: waiting, to: processing, event: new_job}
  - {from: processing, to: waiting, event: job_done}
  - {from: "*", to: done, event: stop}
"""

BASE = "http://127.0.0.1:3001"


def register(
    store: SQLiteStore, name: str, text: str = WORKER, *, pid: int = 0, hostname: str = "localhost"
) -> str:
    """Record a machine as started (what the engine does) and return its definition digest."""
    definition = parse_definition(text, f"{name}.yaml", ActionLoader())
    store.register_machine(
        name,
        definition.initial_state,
        pid=pid,
        hostname=hostname,
        config_path=f"{name}.yaml",
        definition_name=definition.name,
        definition_hash=definition.digest,
        definition_text=text,
        at=store.clock.now(),
    )
    return definition.digest


def step(store: SQLiteStore, name: str, source: str, target: str, event: str, n: int) -> None:
    """Commit one state change of `name`, as the engine would."""
    store.commit_step(
        Step(
            machine_name=name,
            at=store.clock.now(),
            step=n,
            from_state=source,
            to_state=target,
            event=event,
        )
    )


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'monitoring.db'}"
        return
    schema_url = pg_testing.fresh_schema_url(pg_testing.check_server(), prefix="monitoring_")
    yield schema_url
    pg_testing.drop_schema(schema_url)


@pytest.fixture
def store(url: str) -> Iterator[Store]:
    opened = open_store(url)
    yield opened
    opened.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "ui.db"


@pytest.fixture
def seeded(db_path: Path) -> Iterator[SQLiteStore]:
    store = SQLiteStore(str(db_path))
    register(store, "worker-1")
    step(store, "worker-1", "waiting", "processing", "new_job", 1)
    yield store
    store.close()


def make_client(db_path: Path, **config: object) -> TestClient:
    settings: dict[str, Any] = {"fallback_interval": 0.05, **config}
    app = create_app(UiConfig(db_url=f"sqlite:///{db_path}", **settings))
    return TestClient(app, base_url=BASE)


@pytest.fixture
def client(seeded: SQLiteStore, db_path: Path) -> Iterator[TestClient]:
    with make_client(db_path) as c:
        yield c


class LiveServer:
    """uvicorn on a free loopback port in a thread: real HTTP and WebSocket handshakes."""

    def __init__(self, db_path: Path, **config: object) -> None:
        import socket
        import threading
        import time

        import uvicorn

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"
        self.ws_url = f"ws://{self.host}/api/stream"
        settings: dict[str, Any] = {"fallback_interval": 0.05, **config}
        app = create_app(UiConfig(db_url=f"sqlite:///{db_path}", **settings))
        self.server = uvicorn.Server(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                ws="websockets-sansio",
                ws_max_size=64 * 1024,
                lifespan="on",
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)

    def raw(self, request: bytes) -> bytes:
        """Send raw bytes (no URL normalisation) and return the whole response."""
        import socket

        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(request)
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def live(seeded: SQLiteStore, db_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(db_path)
    yield server
    server.stop()


@pytest.fixture
def live_factory(seeded: SQLiteStore, db_path: Path) -> Iterator[object]:
    started: list[LiveServer] = []

    def start(**config: object) -> LiveServer:
        server = LiveServer(db_path, **config)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
