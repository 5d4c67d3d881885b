"""An online backup of a SQLite database: a consistent copy taken with SQLite's backup
API while machines keep reading and writing it (copying the file would miss the WAL)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import apsw

from statemachine_engine.database.sqlite.connection import check_sqlite_version, describe
from statemachine_engine.errors import StoreError

BUSY_TIMEOUT_MS = 30_000


def backup(source: str, dest: str) -> int:
    """Copy the database at `source` into the new file `dest` and return its size in bytes.

    The copy is one read transaction (a snapshot; in WAL mode writers go on meanwhile),
    written to `dest.partial` and checked with `PRAGMA quick_check` before it is renamed,
    so `dest` never names a half-written or damaged copy."""
    check_sqlite_version()
    if not os.path.isfile(source):
        raise StoreError(f"no database at {source} (check --db or STATEMACHINE_DB)")
    target = Path(dest)
    if target.exists():
        raise StoreError(f"backup destination {dest} exists; give a new file name")
    if not target.parent.is_dir():
        raise StoreError(f"backup destination folder {target.parent} does not exist")
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        _copy(source, str(partial))
        os.replace(partial, target)
    finally:
        with contextlib.suppress(OSError):
            partial.unlink()
    return target.stat().st_size


def _copy(source: str, dest: str) -> None:
    try:
        src = apsw.Connection(source, flags=apsw.SQLITE_OPEN_READWRITE)
    except apsw.Error as exc:
        raise describe(exc, source) from None
    try:
        src.set_busy_timeout(BUSY_TIMEOUT_MS)
        try:
            out = apsw.Connection(dest, flags=apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE)
        except apsw.Error as exc:
            raise describe(exc, dest) from None
        try:
            with out.backup("main", src, "main") as job:
                job.step(-1)  # all pages in one step: one snapshot, never restarted
            found = [row[0] for row in out.execute("PRAGMA quick_check")]
            if found != ["ok"]:
                raise StoreError(f"backup {dest} failed its check: {'; '.join(found[:3])}")
            out.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal
        except apsw.Error as exc:
            raise describe(exc, dest) from None
        finally:
            out.close()
    finally:
        src.close()
