"""Opening a SQLite database safely: a fixed SQLite build, WAL, full sync, migrations."""

from __future__ import annotations

import contextlib
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import apsw

from statemachine_engine.database.migrations import Migration
from statemachine_engine.database.queries import Queries
from statemachine_engine.database.sqlite import legacy
from statemachine_engine.database.tx import NO_ARGS, AppendedRows, Row, T
from statemachine_engine.errors import StopTimeout, StoreError

MIN_SQLITE = (3, 51, 3)
QUERIES = Queries("sqlite")
BUSY_TIMEOUT_MS = 30_000


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".")[:3])


def check_sqlite_version() -> None:
    """Refuse SQLite builds inside the documented WAL-reset race (3.7.0 to 3.51.2)."""
    version = apsw.sqlite_lib_version()
    if _version_tuple(version) < MIN_SQLITE:
        raise StoreError(
            f"SQLite {version} has a WAL-reset bug that can corrupt a shared database; "
            f"install apsw with SQLite >= {'.'.join(map(str, MIN_SQLITE))}"
        )


def _dict_row(cursor: apsw.Cursor, row: Sequence[Any]) -> dict[str, Any]:
    return {d[0]: value for d, value in zip(cursor.get_description(), row, strict=True)}


def describe(exc: BaseException, path: str) -> StoreError:
    """Turn a driver exception into one clear line naming the database."""
    if isinstance(exc, apsw.ReadOnlyError):
        return StoreError(f"database {path} is read-only")
    if isinstance(exc, apsw.FullError):
        return StoreError(f"database {path}: disk is full")
    if getattr(exc, "extendedresult", None) == apsw.SQLITE_IOERR_WRITE:
        return StoreError(f"database {path}: cannot write (disk full or file size limit)")
    if isinstance(exc, apsw.BusyError):
        return StoreError(f"database {path} is locked by another process for too long")
    if isinstance(exc, apsw.CantOpenError):
        return StoreError(f"cannot open database {path}")
    if isinstance(exc, apsw.CorruptError | apsw.NotADBError):
        return StoreError(f"database {path} is corrupt or not a database")
    return StoreError(f"database {path}: {exc}")


def _prepare_directory(path: str) -> None:
    parent = Path(path).parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"cannot create database directory {parent} for {path}: {exc.strerror}"
        ) from None


def _open_error(exc: apsw.Error, path: str) -> StoreError:
    """Why a database file could not be opened, in the terms a user can act on."""
    if path != ":memory:" and isinstance(exc, apsw.CantOpenError):
        parent = Path(path).parent
        if not Path(path).exists():
            reason = "directory is not writable" if not os.access(parent, os.W_OK) else exc
            return StoreError(f"cannot create database {path}: {reason}")
        if Path(path).is_dir():
            return StoreError(f"cannot open database {path}: it is a directory")
        if not os.access(path, os.R_OK):
            return StoreError(f"cannot open database {path}: permission denied")
    return describe(exc, path)


class _BusyWait:
    """Busy handler: retry a locked database every 1-5 ms for up to BUSY_TIMEOUT_MS, or until
    `give_up_at` (monotonic; set when the machine stops). SQLite's own timeout backs off to
    100 ms sleeps, so under contention a waiter can starve for seconds while others take the
    lock, long enough to lose a job's lease."""

    def __init__(self) -> None:
        self.since = 0.0
        self.give_up_at: float | None = None

    def stopping(self) -> bool:
        """True once the stop deadline has passed."""
        return self.give_up_at is not None and time.monotonic() >= self.give_up_at

    def retry(self, prior_calls: int) -> bool:
        now = time.monotonic()
        if prior_calls == 0:
            self.since = now
        elif now - self.since >= BUSY_TIMEOUT_MS / 1000:
            return False
        if self.stopping():
            return False
        time.sleep(random.uniform(0.001, 0.005))
        return True


def _file_id(path: str) -> tuple[int, int] | None:
    """(st_dev, st_ino) of the file a path names now; None when it is gone."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


class Connection:
    """One apsw connection with dict rows and explicit immediate write transactions.

    With create=False a missing file is an error and nothing is created (neither the file
    nor its directory); `created` tells whether this connection created the database. The
    file's device and inode are remembered so that a database deleted or replaced under a
    running process is noticed (check_identity) instead of written to in vain."""

    def __init__(self, path: str, migrations: Sequence[Migration], *, create: bool = True) -> None:
        check_sqlite_version()
        self.path = path
        self.created = False
        #: Called after a COMMIT with the job types whose workers to wake (in order).
        self.on_commit: Callable[[list[str]], None] | None = None
        self._stat_path: str | None = None
        self._identity: tuple[int, int] | None = None
        flags = apsw.SQLITE_OPEN_READWRITE
        if path != ":memory:":
            existed = os.path.exists(path)
            if not create and not existed:
                raise StoreError(f"no database at {path} (check --db or STATEMACHINE_DB)")
            if create:
                _prepare_directory(path)
                flags |= apsw.SQLITE_OPEN_CREATE
            self.created = not existed
        else:
            flags |= apsw.SQLITE_OPEN_CREATE
        try:
            self.db = apsw.Connection(path, flags=flags)
        except apsw.Error as exc:
            if not create and isinstance(exc, apsw.CantOpenError) and not os.path.exists(path):
                raise StoreError(f"no database at {path} (check --db or STATEMACHINE_DB)") from None
            raise _open_error(exc, path) from None
        self._busy = _BusyWait()
        try:
            self.db.set_busy_handler(self._busy.retry)
            self.db.row_trace = _dict_row
            if path != ":memory:" and self.db.readonly("main"):
                raise StoreError(f"database {path} is read-only")
            mode = self._enable_wal()
            if path != ":memory:" and mode != "wal":
                raise StoreError(f"database {path} cannot use WAL journal mode (got {mode!r})")
            self.db.execute("PRAGMA synchronous=FULL")
            self._migrate(migrations)
            if path != ":memory:":
                self._stat_path = os.path.abspath(path)
                self._identity = _file_id(self._stat_path)
        except BaseException as exc:
            self.db.close()
            if isinstance(exc, apsw.Error):
                raise describe(exc, path) from None
            raise

    def close(self) -> None:
        self.db.close()

    def give_up_waiting(self, at: float | None) -> None:
        """From monotonic time `at` on, a call that finds the database locked fails at once
        with StopTimeout instead of waiting (the machine is stopping)."""
        self._busy.give_up_at = at

    def _error(self, exc: apsw.Error) -> StoreError:
        if isinstance(exc, apsw.BusyError) and self._busy.stopping():
            return StopTimeout(f"database {self.path} is locked by another process")
        return describe(exc, self.path)

    def check_identity(self) -> None:
        """Raise StoreError when the database file was deleted or replaced since it was
        opened: this connection still reads and writes the old, unlinked file, so every write
        would be lost and every job added to the new file would go unseen. One stat call."""
        if self._stat_path is None or self._identity is None:
            return
        try:
            now = _file_id(self._stat_path)
        except OSError:
            return  # cannot tell (e.g. a directory became unreadable): SQLite will say
        if now is None:
            raise StoreError(f"database {self.path} was deleted while in use; stopping")
        if now != self._identity:
            raise StoreError(
                f"database {self.path} was replaced by another file while in use; stopping"
            )

    def rows(self, sql: str, args: Sequence[Any] | dict[str, Any] = ()) -> list[dict[str, Any]]:
        bindings = args if isinstance(args, dict) else tuple(args)
        try:
            return list(self.db.execute(sql, bindings))
        except apsw.Error as exc:
            raise self._error(exc) from None

    def one(self, sql: str, args: Sequence[Any] | dict[str, Any] = ()) -> dict[str, Any] | None:
        found = self.rows(sql, args)
        return found[0] if found else None

    def changes(self) -> int:
        return int(self.db.changes())

    def read(self, work: Callable[[Tx], T]) -> T:
        """Run `work` outside a write transaction (each statement sees committed data)."""
        self.check_identity()
        return work(Tx(self))

    def write(self, work: Callable[[Tx], T]) -> T:
        """Run `work` in an immediate write transaction: the write lock is taken up front so
        the busy timeout applies (a deferred read-then-write transaction fails at once).
        Every write (claims, step commits, heartbeats) first checks that the file is still
        ours. The wake-ups it asked for are rung after COMMIT (`on_commit`)."""
        self.check_identity()
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except apsw.Error as exc:
            raise self._error(exc) from None
        tx = Tx(self)
        try:
            result = work(tx)
            tx.appended.insert(tx)
        except BaseException:
            with contextlib.suppress(apsw.Error):
                self.db.execute("ROLLBACK")
            raise
        try:
            self.db.execute("COMMIT")
        except apsw.Error as exc:
            with contextlib.suppress(apsw.Error):
                self.db.execute("ROLLBACK")
            raise self._error(exc) from None
        if tx.job_types and self.on_commit is not None:
            self.on_commit(tx.job_types)
        return result

    def _enable_wal(self) -> str:
        """Switch to WAL. Several processes opening a fresh file at once can get SQLITE_BUSY
        here without the busy handler being consulted, so retry until the busy timeout."""
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        delay = 0.001
        while True:
            try:
                rows: list[Any] = self.db.execute("PRAGMA journal_mode=WAL").fetchall()
            except apsw.BusyError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
                continue
            return str(rows[0]["journal_mode"]).lower() if rows else ""

    def _migrate(self, migrations: Sequence[Migration]) -> None:
        try:
            applied = {r["name"] for r in self.db.execute("SELECT name FROM schema_migrations")}
        except apsw.SQLError:
            applied = set()  # a fresh database: no schema_migrations table yet
        if all(m.key in applied for m in migrations):
            return

        def apply(tx: Tx) -> legacy.Carried | None:
            from_1_0 = legacy.is_legacy(self.db)
            if from_1_0:
                legacy.set_aside(self.db)
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations"
                " (name TEXT PRIMARY KEY, applied_at REAL)"
            )
            applied = {row["name"] for row in self.rows("SELECT name FROM schema_migrations")}
            for migration in migrations:
                if migration.key in applied:
                    continue
                self.db.execute(migration.sql).fetchall()
                self.db.execute(
                    "INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)",
                    (migration.key, time.time()),
                )
            return legacy.carry_over(self.db, time.time()) if from_1_0 else None

        carried = self.write(apply)
        if carried is not None:
            legacy.report(self.path, carried)


class Tx:
    """A unit of work's view of the connection: named statements, and the job types whose
    workers to wake after COMMIT. Machines (events) and the UI are woken by their senders'
    doorbells on one host, so those wake-ups have nothing to do here."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.job_types: list[str] = []
        self.appended = AppendedRows()

    def query(self, name: str, args: Mapping[str, Any] = NO_ARGS) -> list[dict[str, Any]]:
        text = QUERIES[name]
        return self.conn.rows(text, dict(args)) if text else []

    def run(self, name: str, args: Mapping[str, Any] = NO_ARGS) -> None:
        self.query(name, args)

    def query_one(self, name: str, args: Mapping[str, Any] = NO_ARGS) -> dict[str, Any] | None:
        found = self.query(name, args)
        return found[0] if found else None

    def changes(self) -> int:
        return self.conn.changes()

    def append(self, name: str, row: Row) -> None:
        self.appended.add(name, row)

    def wake_jobs(self, job_type: str) -> None:
        if job_type not in self.job_types:
            self.job_types.append(job_type)

    def wake_machine(self, name: str) -> None:
        pass

    def stream_changed(self) -> None:
        pass
