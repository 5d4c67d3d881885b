"""Talking to PostgreSQL: URL options, one schema per store, reconnect with backoff, write
transactions whose outcome is settled even when the connection drops during COMMIT, and
migrations applied once under an advisory lock."""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import DictRow, dict_row

from statemachine_engine.database.migrations import Migration
from statemachine_engine.database.postgres.target import NETWORK_DEFAULTS
from statemachine_engine.database.postgres.target import Channels as Channels
from statemachine_engine.database.postgres.target import Target as Target
from statemachine_engine.database.postgres.target import parse_url as parse_url
from statemachine_engine.database.postgres.target import redact as redact
from statemachine_engine.database.postgres.tx import Tx, read_xid
from statemachine_engine.errors import StopTimeout, StoreError

logger = logging.getLogger(__name__)

T = TypeVar("T")

BACKOFF_FIRST = 0.05
BACKOFF_MAX = 2.0
#: Longest uninterrupted sleep while reconnecting: a stop is noticed within this.
PAUSE_SLICE = 0.05
# Connection lost, server shutting down or starting up, too many clients: try again.
_RECONNECT_STATES = ("08", "57P01", "57P02", "57P03", "53300")
# The transaction was rolled back by the server: run it again.
_RETRY_STATES = ("40001", "40P01")


def is_disconnect(exc: BaseException, conn: psycopg.Connection[Any] | None) -> bool:
    """True when exc means the connection is gone (or the server is not ready yet)."""
    if conn is not None and (conn.broken or conn.closed):
        return True
    state = getattr(exc, "sqlstate", None) or ""
    if state.startswith(_RECONNECT_STATES):
        return True
    return isinstance(exc, psycopg.OperationalError) and not state


def describe(exc: BaseException, target: Target) -> StoreError:
    """One clear line for a driver error, naming the database."""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return StoreError(f"PostgreSQL {target.display}: {message}")


def application_name(target: Target, role: str = "store") -> str:
    """How our connections show in pg_stat_activity: role and schema."""
    return f"statemachine-{role}/{target.schema}"[:63]


def connect(target: Target, role: str = "store") -> psycopg.Connection[DictRow]:
    """A new autocommit connection with dict rows and the store's schema on the search path.
    TCP keepalives and a TCP user timeout (unless the URL sets its own) make a silently
    dropped network path an error within about half a minute instead of a hang."""
    given = conninfo_to_dict(target.conninfo)
    options = {k: v for k, v in NETWORK_DEFAULTS.items() if k not in given}
    conn = psycopg.connect(
        make_conninfo(target.conninfo, **options),
        autocommit=True,
        row_factory=dict_row,
        application_name=application_name(target, role),
    )
    conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(target.schema)))
    return conn


def connect_with_backoff(
    target: Target,
    timeout: float,
    stopping: Callable[[], bool] = lambda: False,
    role: str = "store",
) -> psycopg.Connection[DictRow] | None:
    """Connect, retrying with exponential backoff and jitter for up to `timeout` seconds;
    None when `stopping()` turns true first. Raises StoreError when time runs out."""
    deadline = time.monotonic() + timeout
    delay = BACKOFF_FIRST
    while True:
        try:
            return connect(target, role)
        except psycopg.Error as exc:
            if time.monotonic() + delay > deadline:
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "failed"
                raise StoreError(
                    f"cannot connect to PostgreSQL at {target.display}: {reason}"
                ) from None
            logger.info("PostgreSQL %s not reachable, retrying in %.2f s", target.display, delay)
        if not pause(delay * random.uniform(0.8, 1.2), stopping):
            return None
        delay = min(delay * 2, BACKOFF_MAX)


def pause(seconds: float, stopping: Callable[[], bool]) -> bool:
    """Sleep `seconds` in slices of at most PAUSE_SLICE, so that `stopping()` turning true
    (a signal handler sets it while this thread sleeps) ends the wait within one slice.
    Returns False when it did."""
    end = time.monotonic() + seconds
    while not stopping():
        left = end - time.monotonic()
        if left <= 0:
            return True
        time.sleep(min(left, PAUSE_SLICE))
    return False


class Connection:
    """One connection per store. Every unit of work is retried across a reconnect: a read
    simply runs again; a write runs again unless its COMMIT was sent, in which case the
    transaction's own id (`txid_status`) says whether it committed, so nothing is done twice."""

    def __init__(self, target: Target, migrations: Sequence[Migration]) -> None:
        self.target = target
        self.channels = Channels(target.schema)
        self._lock = threading.RLock()
        #: When the current outage began (its `connection lost` line was logged), else None.
        self._lost_since: float | None = None
        self._give_up_at: float | None = None
        #: The server's clock minus this host's, in seconds (see clock.ServerClock).
        self.offset = 0.0
        #: Called with every new server connection after the first, under this
        #: connection's lock (the listeners LISTEN again on it).
        self.on_reconnect: list[Callable[[psycopg.Connection[DictRow]], None]] = []
        self.closed = False
        self._conn: psycopg.Connection[DictRow] | None = connect_with_backoff(
            target, target.start_timeout
        )
        if self._conn is not None:
            self._measure(self._conn)
        self._migrate(migrations)

    def _measure(self, conn: psycopg.Connection[DictRow]) -> None:
        """Take the server's clock offset from the quickest of three round trips (kept if
        the query fails): its error is at most half that round trip, and a process paused
        during one sample (a loaded host) does not skew the durable timers (core.resume)."""
        best: tuple[float, float] | None = None
        for _ in range(3):
            try:
                before = time.time()
                row = conn.execute(
                    "SELECT extract(epoch FROM clock_timestamp())::float8 AS now"
                ).fetchone()
                after = time.time()
            except psycopg.Error:
                return
            if row is not None and (best is None or after - before < best[0]):
                best = (after - before, float(row["now"]) - (before + after) / 2)
        if best is not None:
            self.offset = best[1]

    def close(self) -> None:
        with self._lock:
            self.closed = True
            if self._conn is not None:
                self._conn.close()
            self._conn = None

    def give_up_waiting(self, at: float | None) -> None:
        """From monotonic time `at` on, a unit of work that finds the server gone fails with
        StopTimeout instead of reconnecting (the machine is stopping). Safe to call from a
        signal handler or another thread: it only sets a number the retry loops read."""
        self._give_up_at = at

    def _stopping(self) -> bool:
        return self._give_up_at is not None and time.monotonic() >= self._give_up_at

    def _stop_timeout(self) -> StopTimeout:
        return StopTimeout(f"PostgreSQL {self.target.display} is unreachable")

    def read(self, work: Callable[[Tx], T]) -> T:
        return self._run(work, write=False)

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[psycopg.Connection[DictRow] | None]:
        """The server connection as it is (None when there is none or it is broken), kept
        from every other use until the block ends; it is not reconnected here."""
        with self._lock:
            conn = self._conn
            yield conn if conn is not None and not conn.closed and not conn.broken else None

    def write(self, work: Callable[[Tx], T]) -> T:
        return self._run(work, write=True)

    def _connected(self, deadline: float) -> psycopg.Connection[DictRow]:
        conn = self._conn
        if conn is not None and not conn.closed and not conn.broken:
            return conn
        if conn is not None:
            self._log_lost("connection found closed")
            conn.close()
        self._conn = None
        fresh = connect_with_backoff(
            self.target, max(0.0, deadline - time.monotonic()), self._stopping
        )
        if fresh is None:
            raise self._stop_timeout()
        self._conn = fresh
        self._measure(fresh)
        for hook in self.on_reconnect:
            hook(fresh)
        return fresh

    def _run(self, work: Callable[[Tx], T], *, write: bool, pipelined: bool = True) -> T:
        with self._lock:
            started = time.monotonic()
            deadline = started + self.target.reconnect_timeout
            failures = 0
            while True:
                conn: psycopg.Connection[DictRow] | None = None
                xid: int | None = None
                committing = False
                try:
                    conn = self._connected(deadline)
                    with conn.cursor() as cur:
                        tx = Tx(cur, self.channels)
                        if not write:
                            result = work(tx)
                        else:
                            # Pipeline mode: statements whose result the work does not read
                            # go out together with the next one it reads, COMMIT included.
                            # The transaction id (needed if the connection is lost during
                            # COMMIT) arrives with the work's first read, or is read just
                            # before COMMIT is sent.
                            try:
                                with contextlib.ExitStack() as stack:
                                    ids: psycopg.Cursor[DictRow] | None = None
                                    if pipelined:
                                        tx.pipeline = stack.enter_context(conn.pipeline())
                                        cur.execute("BEGIN")
                                        ids = stack.enter_context(conn.cursor())
                                        ids.execute("SELECT txid_current() AS xid")
                                    else:
                                        cur.execute("BEGIN; SELECT txid_current() AS xid")
                                        cur.nextset()
                                        xid = read_xid(cur)
                                    result = work(tx)
                                    tx.appended.insert(tx)
                                    tx.send_notices()
                                    if ids is not None:
                                        xid = read_xid(ids)
                                    committing = True
                                    cur.execute("COMMIT")
                            except BaseException:
                                tx.pipeline = None
                                if not conn.broken:
                                    try:
                                        cur.execute("ROLLBACK")  # a no-op if COMMIT ended it
                                    except psycopg.Error:
                                        conn.close()
                                raise
                            tx.pipeline = None
                            committing = False
                            tx.send_after_commit()
                    self._log_reconnected()
                    return result
                except psycopg.Error as exc:
                    state = getattr(exc, "sqlstate", None) or ""
                    if state in _RETRY_STATES:
                        continue
                    if not is_disconnect(exc, conn):
                        raise describe(exc, self.target) from None
                    self._log_lost(str(describe(exc, self.target)))
                    failures += 1
                    if conn is not None:
                        conn.close()
                    if committing and xid is not None and self._committed(xid, deadline):
                        self._log_reconnected()
                        return result
                    if time.monotonic() > deadline:
                        raise StoreError(
                            f"PostgreSQL {self.target.display}: connection lost for more than"
                            f" {self.target.reconnect_timeout:g} s"
                        ) from None
                    backoff = min(BACKOFF_FIRST * 2 ** min(failures, 6), BACKOFF_MAX)
                    if not pause(backoff, self._stopping):
                        raise self._stop_timeout() from None

    def lost(self, conn: psycopg.Connection[DictRow], reason: str) -> None:
        """`conn` was found lost outside a unit of work (by the LISTEN watch): log the
        outage's first line and close it; the next unit of work reconnects. Call it holding
        the connection (`exclusive`)."""
        self._log_lost(reason)
        conn.close()

    def _log_lost(self, reason: str) -> None:
        """First line of the log contract (docs/postgresql.md): once per outage."""
        if self._lost_since is None:
            self._lost_since = time.monotonic()
            logger.warning(
                "PostgreSQL %s: connection lost (%s); reconnecting", self.target.display, reason
            )

    def _log_reconnected(self) -> None:
        """Second line of the log contract: once per outage, whichever path reconnected."""
        if self._lost_since is not None:
            logger.warning(
                "PostgreSQL %s: reconnected after %.1f s",
                self.target.display,
                time.monotonic() - self._lost_since,
            )
            self._lost_since = None

    def _committed(self, xid: int, deadline: float) -> bool:
        """Whether transaction xid committed; asked on a fresh connection after the old one
        died during COMMIT."""
        while True:
            try:
                conn = self._connected(deadline)
                row = conn.execute("SELECT txid_status(%s) AS status", (xid,)).fetchone()
                status = row["status"] if row else None
            except psycopg.Error as exc:
                if not is_disconnect(exc, self._conn) or time.monotonic() > deadline:
                    raise describe(exc, self.target) from None
                if not pause(BACKOFF_FIRST, self._stopping):
                    raise self._stop_timeout() from None
                continue
            if status == "in progress":
                if not pause(BACKOFF_FIRST, self._stopping):
                    raise self._stop_timeout() from None
                continue
            logger.warning(
                "PostgreSQL %s: connection lost during COMMIT; transaction %s %s",
                self.target.display,
                xid,
                status,
            )
            return status == "committed"

    def _migrate(self, migrations: Sequence[Migration]) -> None:
        schema = sql.Identifier(self.target.schema)

        def apply(tx: Tx) -> None:
            # One migrator per schema at a time; the others wait, then find nothing to do.
            tx.rows(
                "SELECT pg_advisory_xact_lock(hashtext(%s))",
                ("statemachine:" + self.target.schema,),
            )
            found = tx.one("SELECT to_regnamespace(%s) AS s", (f'"{self.target.schema}"',))
            if found is None or found["s"] is None:  # needs CREATE on the database only now
                tx.rows(sql.SQL("CREATE SCHEMA {}").format(schema))
            tx.rows(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {}.schema_migrations"
                    " (name TEXT PRIMARY KEY, applied_at DOUBLE PRECISION)"
                ).format(schema)
            )
            applied = {r["name"] for r in tx.rows("SELECT name FROM schema_migrations")}
            for migration in migrations:
                if migration.key in applied:
                    continue
                tx.cur.execute(migration.sql.encode())
                tx.rows(
                    "INSERT INTO schema_migrations (name, applied_at) VALUES (%s, %s)",
                    (migration.key, time.time()),
                )

        def pending(tx: Tx) -> bool:
            table = tx.one(
                "SELECT to_regclass(%s) AS t", (f'"{self.target.schema}".schema_migrations',)
            )
            if table is None or table["t"] is None:
                return True
            applied = {r["name"] for r in tx.rows("SELECT name FROM schema_migrations")}
            return not all(m.key in applied for m in migrations)

        if self.read(pending):
            self._run(apply, write=True, pipelined=False)  # scripts: several statements each
