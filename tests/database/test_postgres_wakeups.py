"""PostgreSQL specifics: LISTEN/NOTIFY wake-ups, reconnecting after a lost connection, and
the outcome of a COMMIT whose connection died. Runs against the test server for real (see
`statemachine_engine.database.postgres.testing`); an unreachable server fails the tests."""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import psycopg
import pytest

from statemachine_engine.config.loader import parse_definition
from statemachine_engine.core import ActionLoader, StateMachineEngine
from statemachine_engine.database import open_store
from statemachine_engine.database.postgres import PostgresStore
from statemachine_engine.database.postgres import testing as pg
from statemachine_engine.database.postgres.connection import Channels, application_name, parse_url
from statemachine_engine.database.wakeups import listen_for_wakeups
from statemachine_engine.errors import StoreError

WORKER = """
name: pg worker
initial_state: waiting
states: [waiting, processing]
transitions:
  - {from: waiting, to: processing, event: new_job}
  - {from: waiting, to: waiting, event: no_jobs}
  - {from: processing, to: waiting, event: job_done}
actions:
  waiting:
    - {type: check_database_queue, job_type: pgjob}
  processing:
    - {type: log, message: "job {job_id}", success: job_done}
"""

#: Holds its job until told to finish; leases of 0.6 s are renewed every 0.2 s meanwhile.
SLOW_WORKER = """
name: slow worker
initial_state: waiting
states: [waiting, holding, done]
options:
  jobs:
    slow: {lease: 0.6, heartbeat: 0.2}
transitions:
  - {from: waiting, to: holding, event: new_job}
  - {from: holding, to: done, event: finish}
  - {from: done, to: waiting, event: job_done}
actions:
  waiting:
    - {type: check_database_queue, job_type: slow}
  done:
    - {type: complete_job, job_id: "{id}", success: job_done}
"""

PINGED = """
name: pinged
initial_state: idle
states: [idle, got]
transitions:
  - {from: idle, to: got, event: ping}
  - {from: got, to: idle, event: reset}
"""


@pytest.fixture
def pg_url() -> Iterator[str]:
    url = pg.fresh_schema_url(pg.check_server())
    yield url
    pg.drop_schema(url)


@pytest.fixture
def store(pg_url: str) -> Iterator[PostgresStore]:
    opened = PostgresStore(pg_url)
    yield opened
    opened.close()


class Inbox:
    """Collects wake-up messages delivered from the listener thread."""

    def __init__(self) -> None:
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()

    def __call__(self, message: dict[str, Any]) -> None:
        self.messages.put(message)

    def get(self, timeout: float = 2.0) -> dict[str, Any]:
        return self.messages.get(timeout=timeout)

    def empty_for(self, seconds: float) -> bool:
        try:
            self.messages.get(timeout=seconds)
        except queue.Empty:
            return True
        return False


def backend_pids(store: PostgresStore, role: str) -> list[int]:
    """Server pids of this test schema's connections of one role (`store` or `listen`)."""
    target = parse_url(store.url)
    with psycopg.connect(target.conninfo, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s",
            (application_name(target, role),),
        ).fetchall()
    return [r[0] for r in rows]


def terminate(url: str, pids: list[int]) -> None:
    with psycopg.connect(parse_url(url).conninfo, autocommit=True) as conn:
        for pid in pids:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))


def own_pid(store: PostgresStore) -> int:
    return int(store.conn.read(lambda tx: tx.one("SELECT pg_backend_pid() AS p"))["p"])


class TestUrl:
    def test_open_store_selects_postgres_and_isolates_schemas(self, pg_url: str) -> None:
        other = pg.fresh_schema_url()
        a, b = open_store(pg_url), open_store(other)
        try:
            assert isinstance(a, PostgresStore) and a.url == pg_url
            a.add_job("t", job_id="J1")
            assert b.get_job("J1") is None
            assert a.channels.prefix != b.channels.prefix
        finally:
            a.close()
            b.close()
            pg.drop_schema(other)

    @pytest.mark.parametrize(
        ("url", "message"),
        [
            ("postgresql://h/db?schema=bad-name", "bad schema name"),
            ("postgresql://h/db?schema=1x", "bad schema name"),
            ("postgresql://h/db?reconnect_timeout=-1", "expected seconds"),
        ],
    )
    def test_bad_options(self, url: str, message: str) -> None:
        with pytest.raises(StoreError, match=message):
            parse_url(url)

    def test_own_options_do_not_reach_libpq_and_passwords_are_hidden(self) -> None:
        target = parse_url(
            "postgresql://u:secret@h:5/db?schema=s1&sslmode=disable&options=-c%20x%3D1"
        )
        assert target.schema == "s1"
        assert "schema" not in target.conninfo and "sslmode=disable" in target.conninfo
        assert "options=-c%20x%3D1" in target.conninfo  # a space stays %20 (libpq: no `+`)
        assert "secret" not in target.display and "***" in target.display

    def test_dead_network_paths_are_detected_unless_the_url_says_otherwise(
        self, pg_url: str
    ) -> None:
        store = PostgresStore(pg_url + "&keepalives_idle=7")
        try:
            conn = store.conn._conn
            assert conn is not None
            options = {o.keyword.decode(): o.val for o in conn.pgconn.info}
            assert options["keepalives"] == b"1" and options["tcp_user_timeout"] == b"30000"
            assert options["keepalives_idle"] == b"7"
        finally:
            store.close()

    def test_channels_are_valid_identifiers(self) -> None:
        channels = Channels("x")
        name = channels.machine("a machine name that is much longer than sixty-three bytes " * 3)
        assert len(name) < 63 and name.isidentifier()


class TestNotify:
    def test_jobs_events_and_realtime_are_announced_on_commit(
        self, store: PostgresStore, pg_url: str
    ) -> None:
        inbox, other_inbox = Inbox(), Inbox()
        listener = store.listen("alpha", inbox, realtime=True)
        other = store.listen("beta", other_inbox, jobs=False)
        sender = PostgresStore(pg_url)
        try:
            sender.add_job("render", job_id="J1")
            got = [inbox.get(), inbox.get()]
            assert {"kind": "job", "job_type": "render"} in got
            assert {"kind": "realtime"} in got
            sender.send_event("alpha", "go")
            got = [inbox.get(), inbox.get()]
            assert {"kind": "event"} in got
            assert other_inbox.empty_for(0.2)  # beta neither hears alpha's events nor jobs
        finally:
            listener.close()
            other.close()
            sender.close()

    def test_a_rolled_back_transaction_wakes_nobody(self, store: PostgresStore) -> None:
        inbox = Inbox()
        listener = store.listen("alpha", inbox)
        try:
            with pytest.raises(StoreError):
                store.send_event("alpha", "huge", "x" * (2 * 1024 * 1024))
            store.add_job("render", job_id="J1")
            with pytest.raises(StoreError):
                store.add_job("render", job_id="J1")
            assert inbox.get() == {"kind": "job", "job_type": "render"}
            assert inbox.empty_for(0.2)
        finally:
            listener.close()

    def test_sqlite_stores_have_no_wakeups(self, tmp_path: Any) -> None:
        sqlite = open_store(f"sqlite:///{tmp_path}/x.db")
        try:
            assert listen_for_wakeups(sqlite, "m", lambda m: None) is None
        finally:
            sqlite.close()


class TestConnectionLoss:
    def test_store_reconnects_transparently(self, store: PostgresStore) -> None:
        store.add_job("render", job_id="J1")
        before = own_pid(store)
        terminate(store.url, [before])
        job = store.claim_job("render", "w@h:1")
        assert job is not None and job.job_id == "J1"
        assert own_pid(store) != before

    def test_listener_reconnects_and_says_so(self, store: PostgresStore, pg_url: str) -> None:
        inbox = Inbox()
        listener = store.listen("alpha", inbox)
        try:
            pids = backend_pids(store, "store")
            assert pids == [own_pid(store)]  # LISTEN shares the store's connection
            terminate(pg_url, pids)
            # Found lost while idle by the thread that watches the socket, not by a call.
            assert inbox.get(timeout=5) == {"kind": "reconnected"}
            store.send_event("alpha", "go")
            assert inbox.get() == {"kind": "event"}
        finally:
            listener.close()

    def test_gives_up_after_reconnect_timeout(self, pg_url: str) -> None:
        store = PostgresStore(pg_url + "&reconnect_timeout=0.3")
        try:
            # From now on the server "is gone": reconnecting goes to a closed port.
            store.conn.target = parse_url(
                "postgresql://postgres@127.0.0.1:1/x?schema=s&reconnect_timeout=0.3"
            )
            terminate(pg_url, [own_pid(store)])
            started = time.monotonic()
            with pytest.raises(StoreError, match=r"cannot connect|connection lost"):
                store.get_job("J1")
            assert time.monotonic() - started < 3
        finally:
            store.close()


class FlakyCommit:
    """Makes the next COMMIT of a store fail as a dropped connection would: either before
    the server saw it (`committed=False`) or after it committed (`committed=True`)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, committed: bool) -> None:
        self.armed = True
        original = psycopg.Cursor.execute

        def execute(cur: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            if self.armed and query == "COMMIT":
                self.armed = False
                if committed:
                    original(cur, query, *args, **kwargs)
                cur.connection.close()
                raise psycopg.OperationalError("server closed the connection unexpectedly")
            return original(cur, query, *args, **kwargs)

        monkeypatch.setattr(psycopg.Cursor, "execute", execute)


class TestAmbiguousCommit:
    def test_commit_that_went_through_is_not_run_again(
        self, store: PostgresStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        store.add_job("render", job_id="J1")
        FlakyCommit(monkeypatch, committed=True)
        job = store.claim_job("render", "w@h:1")
        assert job is not None and job.attempts == 1
        current = store.get_job("J1")
        assert current is not None and (current.attempts, current.lease_owner) == (1, "w@h:1")
        FlakyCommit(monkeypatch, committed=True)
        assert store.add_job("render", job_id="J2").job_id == "J2"  # no DuplicateJobError

    def test_commit_that_was_lost_is_run_again(
        self, store: PostgresStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        store.add_job("render", job_id="J1")
        FlakyCommit(monkeypatch, committed=False)
        job = store.claim_job("render", "w@h:1")
        assert job is not None and job.attempts == 1
        assert store.count_jobs()["processing"] == 1


StartEngine = Callable[..., Awaitable[tuple[StateMachineEngine, "asyncio.Task[int]"]]]


@pytest.fixture
async def engines(pg_url: str) -> Any:
    started: list[tuple[StateMachineEngine, asyncio.Task[int], PostgresStore]] = []

    async def start(text: str, name: str) -> tuple[StateMachineEngine, asyncio.Task[int]]:
        loader = ActionLoader()
        store = PostgresStore(pg_url)
        engine = StateMachineEngine(
            parse_definition(text, f"{name}.yaml", loader),
            name,
            store=store,
            loader=loader,
            safety_interval=3600.0,  # a missed wake-up fails the test
        )
        task = asyncio.create_task(engine.run())
        started.append((engine, task, store))
        await engine.wait_parked(timeout=10)
        return engine, task

    yield start
    for engine, _task, _store in started:
        engine.stop()
    for _engine, task, store in started:
        await asyncio.wait({task}, timeout=5)
        store.close()


class TestEngineWakeups:
    async def test_parked_worker_wakes_for_a_job_enqueued_elsewhere(
        self, engines: Any, store: PostgresStore
    ) -> None:
        engine, _ = await engines(WORKER, "pgworker")
        latencies = []
        for n in range(5):
            sent = time.monotonic()
            store.add_job("pgjob", job_id=f"J{n}")
            await engine.wait_for(
                lambda n=n: (j := store.get_job(f"J{n}")) is not None and j.status == "completed",
                timeout=5,
            )
            latencies.append(time.monotonic() - sent)
            await engine.wait_parked()
        assert max(latencies) < 1.0, latencies

    async def test_event_sent_through_the_database_wakes_the_target(
        self, engines: Any, store: PostgresStore
    ) -> None:
        engine, _ = await engines(PINGED, "pinged")
        store.send_event("pinged", "ping", source="elsewhere")
        await engine.wait_for_state("got", timeout=3)

    async def test_worker_survives_a_lost_connection(
        self, engines: Any, store: PostgresStore, pg_url: str
    ) -> None:
        engine, _ = await engines(WORKER, "pgworker")
        terminate(pg_url, backend_pids(store, "store"))
        await asyncio.sleep(0.1)
        for n in range(3):
            store.add_job("pgjob", job_id=f"J{n}")
        await engine.wait_for(lambda: store.count_jobs()["completed"] == 3, timeout=10)


async def test_a_machine_holds_one_connection_also_while_renewing_a_lease(
    engines: Any, store: PostgresStore, pg_url: str
) -> None:
    """LISTEN, the work and the lease renewals of a machine share one server connection."""
    engine, _ = await engines(SLOW_WORKER, "slowworker")
    assert engine._keeper is not None
    store.add_job("slow", job_id="S1")
    keeper = engine._keeper
    deadline = time.monotonic() + 20
    while keeper.renewals < 2:  # renewed on the keeper's thread: polled
        assert time.monotonic() < deadline, "the lease was not renewed twice within 20 s"
        await asyncio.sleep(0.05)
    job = store.get_job("S1")
    assert job is not None and job.status == "processing"
    ours = set(backend_pids(store, "store")) - {own_pid(store)}
    assert len(ours) == 1, ours
    assert backend_pids(store, "listen") == []
    store.send_event("slowworker", "finish")
    await engine.wait_for(lambda: store.count_jobs()["completed"] == 1, timeout=10)


def test_listener_close_is_prompt(store: PostgresStore) -> None:
    listener = store.listen("alpha", lambda m: None)
    started = time.monotonic()
    listener.close()
    assert time.monotonic() - started < 2.5
    assert not any(t.name.startswith("pg-listen") and t.is_alive() for t in threading.enumerate())


def test_cli_on_postgres_adds_jobs_and_notifies_events(
    store: PostgresStore, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from statemachine_engine.cli.db import main

    inbox = Inbox()
    listener = store.listen("remote", inbox, jobs=False)
    try:
        assert main(["--db", pg_url, "add-job", "J1", "--type", "render"]) == 0
        assert main(["--db", pg_url, "send-event", "--target", "remote", "--type", "go"]) == 0
        assert "notified on every host" in capsys.readouterr().out
        assert inbox.get() == {"kind": "event"}
        job = store.get_job("J1")
        assert job is not None and job.job_type == "render"
    finally:
        listener.close()


def test_many_processes_migrating_a_fresh_schema_at_once(pg_url: str) -> None:
    opened: list[PostgresStore] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def open_one() -> None:
        barrier.wait()
        try:
            opened.append(PostgresStore(pg_url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    try:
        assert not errors, errors
        assert len(opened) == 6
        rows = opened[0].conn.read(lambda tx: tx.rows("SELECT name FROM schema_migrations"))
        names = [r["name"] for r in rows]
        assert names and len(names) == len(set(names))
    finally:
        for store in opened:
            store.close()
