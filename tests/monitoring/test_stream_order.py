"""The UI's tailer never skips: every row once, in id order, across batches and backends,
also rows a PostgreSQL writer commits after a higher id was already visible."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from statemachine_engine.database import Store, open_store
from statemachine_engine.database.postgres import testing as pg_testing
from statemachine_engine.database.postgres.connection import parse_url
from statemachine_engine.database.queries import Queries
from statemachine_engine.database.stream import insert_realtime
from statemachine_engine.monitoring.db import Db
from statemachine_engine.monitoring.stream import BATCH, Client, Hub

DEADLINE = 30.0


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'stream.db'}"
        return
    schema_url = pg_testing.fresh_schema_url(pg_testing.check_server())
    yield schema_url
    pg_testing.drop_schema(schema_url)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """PostgreSQL only: SQLite commits one writer at a time, in id order."""
    schema_url = pg_testing.fresh_schema_url(pg_testing.check_server())
    yield schema_url
    pg_testing.drop_schema(schema_url)


def all_ids(store: Store) -> list[int]:
    ids: list[int] = []
    while rows := store.realtime_since(ids[-1] if ids else 0, 1000):
        ids += [r.id for r in rows]
    return ids


def write_rows(store: Store, n: int, label: str) -> None:
    """One transaction with `n` stream rows (what a busy step does)."""
    now = store.clock.now()

    def work(tx: Any) -> None:
        for i in range(n):
            insert_realtime(tx, label, "activity", {"message": f"{label}-{i}"}, now)

    store.conn.write(work)  # type: ignore[attr-defined]


async def collect(hub: Hub, client: Client, want: int) -> list[int]:
    """Ids pushed to `client` after one wake-up, until `want` arrived (or the deadline)."""
    got: list[int] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    hub.wake()
    while len(got) < want and loop.time() < deadline:
        try:
            message = await asyncio.wait_for(client.queue.get(), deadline - loop.time())
        except TimeoutError:
            break
        assert message["type"] == "events", message
        got += [e["id"] for e in message["events"]]
    return got


def test_a_burst_arrives_every_id_once_in_order(url: str) -> None:
    """Thousands of rows committed before one wake-up: the tailer reads past its batch
    limit in that one pass (its fallback is far beyond the deadline), never twice."""
    writer = open_store(url)
    writer.add_realtime(None, "activity", {"message": "before the UI"})

    shown: list[int] = []

    async def run() -> list[int]:
        db = Db(url)
        hub = Hub(db, doorbell_name=None, fallback_interval=3600)
        try:
            await hub.start()
            client = hub.subscribe()
            # What the hub read before anyone listened (the first row, unless PostgreSQL
            # held it back because another transaction on the server was open then).
            shown.extend(e["id"] for e in hub.history)
            await asyncio.to_thread(lambda: [write_rows(writer, 700, f"w{k}") for k in range(4)])
            return await collect(hub, client, len(all_ids(writer)) - len(shown))
        finally:
            await hub.stop()
            db.close()

    try:
        got = asyncio.run(run())
        ids = all_ids(writer)
    finally:
        writer.close()
    assert len(ids) == 2801
    assert len(ids) - len(shown) > 4 * BATCH
    assert shown in ([], ids[:1])
    assert got == ids[len(shown) :]


def test_a_row_committed_after_higher_ids_is_not_skipped(pg_url: str) -> None:
    """One writer draws its id and stays open while three others commit higher ids: the
    reader holds those back, then delivers all of them once, in id order, after it commits."""
    open_store(pg_url).close()  # the schema, with every migration, before the raw writer
    target = parse_url(pg_url)
    held = psycopg.connect(target.conninfo, autocommit=False)
    held.execute(f'SET search_path TO "{target.schema}"')
    rows = [{"machine": "held", "kind": "activity", "payload": "{}", "created_at": 0.0}]
    held.execute(Queries("postgres")["realtime_insert_rows"], {"rows": json.dumps(rows)})
    (held_id,) = held.execute("SELECT max(id) FROM realtime_events").fetchone() or (0,)

    writers = [open_store(pg_url) for _ in range(3)]
    threads = [
        threading.Thread(target=write_rows, args=(w, 40, f"w{k}")) for k, w in enumerate(writers)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DEADLINE)
    reader = open_store(pg_url)

    async def run() -> tuple[list[int], list[int]]:
        db = Db(pg_url)
        hub = Hub(db, doorbell_name=None, fallback_interval=0.05)
        try:
            await hub.start()
            client = hub.subscribe()
            before = await collect_for(client, 1.0)
            assert not hub.history  # not even the page's first read took a row past it
            await asyncio.to_thread(held.commit)
            after = await collect(hub, client, 121 - len(before))
            return before, after
        finally:
            await hub.stop()
            db.close()

    try:
        visible = [r.id for r in reader.realtime_since(0, 1000)]
        assert held_id not in visible and len(visible) == 120 and min(visible) > held_id
        before, after = asyncio.run(run())
        expected = all_ids(reader)
    finally:
        held.close()
        for store in [*writers, reader]:
            store.close()
    assert before == []  # nothing above the open writer's id was released while it ran
    assert after == expected and len(expected) == 121 and after[0] == held_id


async def collect_for(client: Client, seconds: float) -> list[int]:
    """Ids pushed to `client` within `seconds` (the tailer polls all the while)."""
    got: list[int] = []
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while (left := end - loop.time()) > 0:
        try:
            message = await asyncio.wait_for(client.queue.get(), left)
        except TimeoutError:
            break
        got += [e["id"] for e in message.get("events", [])]
    return got


def test_machine_start_and_stop_reach_the_page_at_once(
    live_factory: Callable[..., Any], db_path: Path
) -> None:
    """The engine rings the UI after it registers and after it records its stop, so both
    rows reach WebSocket clients without the fallback tail (set far beyond the deadline)."""
    from websockets.sync.client import connect

    from statemachine_engine.config.loader import parse_definition
    from statemachine_engine.core import ActionLoader, StateMachineEngine
    from statemachine_engine.database.sqlite import SQLiteStore
    from statemachine_engine.transport import ring

    text = (
        "name: T\ninitial_state: a\nstates: [a, b]\nevents: [go]\n"
        "transitions:\n  - {from: a, to: b, event: go}\n"
    )
    live = live_factory(fallback_interval=3600.0)
    store = SQLiteStore(str(db_path))

    def wait_for(ws: Any, kind: str) -> dict[str, Any]:
        while True:
            message = json.loads(ws.recv(timeout=10))
            for event in message.get("events", []):
                if event["kind"] == kind and event["machine_name"] == "tee":
                    return dict(event)

    async def run() -> None:
        loader = ActionLoader()
        engine = StateMachineEngine(
            parse_definition(text, "t.yaml", loader), "tee", store=store, loader=loader
        )
        with connect(live.ws_url) as ws:
            ws.recv(timeout=10)  # the snapshot
            task = asyncio.create_task(engine.run())
            started = await asyncio.to_thread(wait_for, ws, "machine_started")
            assert started["payload"]["state"] == "a"
            store.send_event("tee", "go")
            ring("tee", {"kind": "event"})
            await asyncio.wait_for(task, DEADLINE)
            stopped = await asyncio.to_thread(wait_for, ws, "machine_stopped")
            assert stopped["id"] > started["id"]

    try:
        asyncio.run(run())
    finally:
        store.close()
