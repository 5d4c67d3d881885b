"""What only the SQLite adapter does: URLs, pragmas, the SQLite version gate, file errors."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import apsw
import pytest

from statemachine_engine.database import connect
from statemachine_engine.database.connect import default_url, open_store, sqlite_path
from statemachine_engine.database.sqlite import SQLiteStore, connection
from statemachine_engine.database.sqlite.connection import check_sqlite_version, describe
from statemachine_engine.errors import StoreError

NOBODY = 65534

# Opens a store as an unprivileged user and prints the StoreError (or "opened").
# Lazily imported stdlib modules are loaded before privileges are dropped, because the
# interpreter's own files may not be readable by that user.
_OPEN_AS_NOBODY = """
import os, sys
from statemachine_engine.database.migrations import builtin_migrations
from statemachine_engine.database.sqlite import SQLiteStore
from statemachine_engine.errors import StoreError

builtin_migrations("sqlite")
if os.geteuid() == 0:
    os.setgid(NOBODY)
    os.setuid(NOBODY)
try:
    SQLiteStore(sys.argv[1]).add_job("render")
except StoreError as exc:
    print(exc)
else:
    print("opened")
""".replace("NOBODY", str(NOBODY))


def open_unprivileged(path: Path) -> str:
    """Open a store at path as a user that file modes apply to; its one-line outcome."""
    done = subprocess.run(
        [sys.executable, "-c", _OPEN_AS_NOBODY, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return done.stdout.strip()


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory an unprivileged user can reach (pytest's tmp_path is private to us)."""
    path = Path(tempfile.mkdtemp(prefix="sme-ro-"))
    path.chmod(0o755)
    yield path
    path.chmod(0o755)
    shutil.rmtree(path)


class _BusyThen:
    """Stands in for an apsw connection whose WAL switch is busy a few times."""

    def __init__(self, busy: int, mode: str) -> None:
        self.busy, self.mode, self.calls = busy, mode, 0

    def execute(self, sql: str) -> _BusyThen:
        assert sql == "PRAGMA journal_mode=WAL"
        self.calls += 1
        if self.calls <= self.busy:
            raise apsw.BusyError("database is locked")
        return self

    def fetchall(self) -> list[dict[str, str]]:
        return [{"journal_mode": self.mode}]


def _connection_with(db: _BusyThen) -> connection.Connection:
    conn = connection.Connection.__new__(connection.Connection)
    conn.db = db  # type: ignore[assignment]
    conn.path = "fake.db"
    return conn


def make_database(path: Path) -> None:
    store = SQLiteStore(str(path))
    store.add_job("render", job_id="J1")
    store.close()


class TestUrls:
    def test_relative_url(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.chdir(tmp_path)
        assert sqlite_path("sqlite:///data/rel.db") == "data/rel.db"
        store = open_store("sqlite:///data/rel.db")
        try:
            assert store.url == "sqlite:///data/rel.db"
            assert (tmp_path / "data" / "rel.db").is_file()
        finally:
            store.close()

    def test_absolute_url(self, tmp_path: Path) -> None:
        url = f"sqlite:///{tmp_path}/abs.db"
        assert url.startswith("sqlite:////")
        assert sqlite_path(url) == f"{tmp_path}/abs.db"
        open_store(url).close()
        assert (tmp_path / "abs.db").is_file()

    def test_bare_path(self, tmp_path: Path) -> None:
        path = str(tmp_path / "bare.db")
        assert sqlite_path(path) == path
        store = open_store(path)
        store.close()
        assert store.url == path
        assert (tmp_path / "bare.db").is_file()

    def test_empty_sqlite_url_is_in_memory(self) -> None:
        assert sqlite_path("sqlite:///") == ":memory:"
        store = open_store("sqlite:///")
        try:
            assert store.add_job("render").status == "pending"
        finally:
            store.close()

    @pytest.mark.parametrize("url", ["sqlite://x", "sqlite://host/x.db", "sqlite:x.db"])
    def test_bad_sqlite_url(self, url: str) -> None:
        with pytest.raises(StoreError, match=r"bad SQLite URL .*sqlite:///relative"):
            open_store(url)

    @pytest.mark.parametrize(
        "url", ["postgresql://u:pw-Qz9@127.0.0.1:1/x", "postgres://127.0.0.1:1/x"]
    )
    def test_unreachable_postgres_is_one_clear_line(self, url: str) -> None:
        with pytest.raises(StoreError, match="cannot connect to PostgreSQL at") as info:
            open_store(url)
        assert "Qz9" not in str(info.value)

    def test_unknown_scheme(self) -> None:
        with pytest.raises(StoreError, match="unsupported database URL scheme 'mysql'"):
            open_store("mysql://db/x")

    def test_default_url_comes_from_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv(connect.ENV_VAR, raising=False)
        assert default_url() == connect.DEFAULT_URL
        monkeypatch.setenv(connect.ENV_VAR, "sqlite:////srv/x.db")
        assert default_url() == "sqlite:////srv/x.db"


class TestPragmas:
    def test_wal_and_full_sync(self, tmp_path: Path) -> None:
        store = SQLiteStore(str(tmp_path / "x.db"))
        try:
            assert store.conn.rows("PRAGMA journal_mode") == [{"journal_mode": "wal"}]
            assert store.conn.rows("PRAGMA synchronous") == [{"synchronous": 2}]
        finally:
            store.close()
        fresh = apsw.Connection(str(tmp_path / "x.db"))
        try:
            assert fresh.execute("PRAGMA journal_mode").fetchall() == [("wal",)]
        finally:
            fresh.close()

    def test_wal_switch_retries_a_busy_database(self) -> None:
        # Processes opening a fresh file together can get SQLITE_BUSY from the WAL switch
        # without the busy handler running; the switch is retried (seen in the claim race).
        db = _BusyThen(busy=3, mode="wal")
        assert _connection_with(db)._enable_wal() == "wal"
        assert db.calls == 4

    def test_wal_switch_gives_up_after_the_busy_timeout(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(connection, "BUSY_TIMEOUT_MS", 50)
        conn = _connection_with(_BusyThen(busy=10**9, mode="wal"))
        started = time.monotonic()
        with pytest.raises(apsw.BusyError):
            conn._enable_wal()
        assert 0.05 <= time.monotonic() - started < 5

    def test_write_waits_for_the_lock_instead_of_failing(self, tmp_path: Path) -> None:
        store = SQLiteStore(str(tmp_path / "x.db"))
        other = apsw.Connection(str(tmp_path / "x.db"))
        other.execute("BEGIN IMMEDIATE")
        releasing = threading.Event()

        def release() -> None:
            releasing.set()  # before COMMIT: the waiting write may finish before set() would run
            other.execute("COMMIT")

        timer = threading.Timer(0.3, release)
        timer.start()
        try:
            job = store.add_job("render")
            assert releasing.is_set(), "the write went through while the lock was held"
            assert store.get_job(job.job_id) == job
        finally:
            timer.join()
            other.close()
            store.close()

    def test_lock_held_too_long_is_one_clear_error(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(connection, "BUSY_TIMEOUT_MS", 100)
        store = SQLiteStore(str(tmp_path / "x.db"))
        other = apsw.Connection(str(tmp_path / "x.db"))
        other.execute("BEGIN IMMEDIATE")
        try:
            started = time.monotonic()
            with pytest.raises(StoreError, match="locked by another process"):
                store.add_job("render")
            assert time.monotonic() - started >= 0.09
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert store.add_job("render").status == "pending"
        store.close()


class TestSqliteVersion:
    def test_bundled_sqlite_is_new_enough(self) -> None:
        version = tuple(int(p) for p in apsw.sqlite_lib_version().split(".")[:3])
        assert version >= (3, 51, 3)
        check_sqlite_version()

    @pytest.mark.parametrize("version", ["3.51.2", "3.40.1", "3.7.0"])
    def test_sqlite_with_the_wal_reset_bug_is_refused(
        self, version: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(apsw, "sqlite_lib_version", lambda: version)
        with pytest.raises(StoreError, match=rf"SQLite {version} has a WAL-reset bug.*3\.51\.3"):
            SQLiteStore(str(tmp_path / "x.db"))
        assert not (tmp_path / "x.db").exists()

    @pytest.mark.parametrize("version", ["3.51.3", "3.54.1", "3.100.0", "4.0.0"])
    def test_fixed_versions_pass(self, version: str, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(apsw, "sqlite_lib_version", lambda: version)
        check_sqlite_version()


class TestFileErrors:
    def test_read_only_file_in_read_only_directory(self, shared_dir: Path) -> None:
        db = shared_dir / "x.db"
        make_database(db)
        db.chmod(0o444)
        shared_dir.chmod(0o555)
        assert open_unprivileged(db) == f"database {db} is read-only"

    def test_read_only_file_in_writable_directory(self, shared_dir: Path) -> None:
        db = shared_dir / "x.db"
        make_database(db)
        db.chmod(0o444)
        shared_dir.chmod(0o777)
        assert open_unprivileged(db) == f"database {db} is read-only"

    def test_new_file_in_read_only_directory(self, shared_dir: Path) -> None:
        shared_dir.chmod(0o555)
        db = shared_dir / "new.db"
        assert open_unprivileged(db) == f"cannot create database {db}: directory is not writable"

    def test_read_only_error_from_the_driver_is_described(self, tmp_path: Path) -> None:
        path = tmp_path / "x.db"
        make_database(path)
        db = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
        try:
            with pytest.raises(apsw.ReadOnlyError) as info:
                db.execute("DELETE FROM jobs")
        finally:
            db.close()
        error = describe(info.value, str(path))
        assert isinstance(error, StoreError)
        assert str(error) == f"database {path} is read-only"

    def test_directory_under_a_regular_file_cannot_be_created(self, tmp_path: Path) -> None:
        blocker = tmp_path / "file"
        blocker.write_text("")
        with pytest.raises(StoreError, match=r"cannot create database directory .*file/sub"):
            SQLiteStore(str(blocker / "sub" / "x.db"))

    def test_missing_directories_are_created(self, tmp_path: Path) -> None:
        SQLiteStore(str(tmp_path / "a" / "b" / "x.db")).close()
        assert (tmp_path / "a" / "b" / "x.db").is_file()

    def test_path_is_a_directory(self, tmp_path: Path) -> None:
        with pytest.raises(StoreError, match="it is a directory"):
            SQLiteStore(str(tmp_path))

    @pytest.mark.parametrize("content", [b"hello", os.urandom(8192)], ids=["short", "random"])
    def test_not_a_database(self, tmp_path: Path, content: bytes) -> None:
        path = tmp_path / "x.db"
        path.write_bytes(content)
        with pytest.raises(StoreError, match="corrupt or not a database"):
            SQLiteStore(str(path))
