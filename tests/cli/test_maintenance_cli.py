"""`statemachine-cli prune --dry-run` and `statemachine-cli backup`: counts that match the
real prune, and a consistent, self-contained copy taken while another process writes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from statemachine_engine.cli.db import main
from statemachine_engine.database.connect import open_store

CLI = Path(sys.executable).parent / "statemachine-cli"
PREFIX = "statemachine-cli: error: "

WRITER = """
import sys
from statemachine_engine.database.connect import open_store
store = open_store(sys.argv[1])
print("ready", flush=True)
n = 0
while True:
    store.add_job("t", job_id=f"w{n}")
    n += 1
"""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'sm.db'}"
    monkeypatch.setenv("STATEMACHINE_DB", url)
    store = open_store(url)
    try:
        for job_id in ("a", "b"):
            store.add_job("t", job_id=job_id)
            assert store.claim_job("t", "w@h:1", job_id=job_id) is not None
            assert store.complete_job(job_id, "w@h:1")
        store.add_job("t", job_id="pending")
    finally:
        store.close()
    return url


def test_prune_dry_run_counts_and_deletes_nothing(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out, _ = run(capsys, "prune", "--older-than", "0.001s", "--dry-run")
    assert rc == 0 and out.startswith("jobs 2, ") and out.endswith(" would be deleted (dry run)\n")
    store = open_store(db)
    try:
        assert store.get_job("a") is not None and store.get_job("b") is not None
    finally:
        store.close()
    rc, real, _ = run(capsys, "prune", "--older-than", "0.001s")
    assert rc == 0 and real == out.replace(" would be deleted (dry run)", " deleted")


def test_prune_needs_a_unit(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run(capsys, "prune", "--older-than", "30")
    assert rc == 2
    assert err == (
        f"{PREFIX}prune: argument --older-than: expected a number with a unit (s, m, h, d),"
        " like 7d, 12h, 30m or 90s, got '30'\n"
    )
    for text, seconds in (("90s", 90), ("30m", 1800), ("12h", 43200), ("7d", 604800)):
        from statemachine_engine.cli.maintenance import duration

        assert duration(text) == seconds


def test_backup_copies_a_database_being_written(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    writer = subprocess.Popen([sys.executable, "-c", WRITER, db], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None and writer.stdout.readline() == "ready\n"
        store = open_store(db)
        try:
            deadline = time.monotonic() + 60
            while store.get_job("w200") is None:  # the writer is well under way
                assert writer.poll() is None and time.monotonic() < deadline
                time.sleep(0.01)
            dest = tmp_path / "backups" / "sm-copy.db"
            dest.parent.mkdir()
            rc, out, err = run(capsys, "backup", str(dest))
            assert (rc, err) == (0, "")
            assert out.startswith(f"backed up {tmp_path / 'sm.db'} to {dest} (")
            after = store.get_job("w200") is not None
        finally:
            store.close()
    finally:
        writer.kill()
        writer.wait()
    assert after
    assert sorted(p.name for p in dest.parent.iterdir()) == ["sm-copy.db"]  # no -wal, no .partial
    copy = open_store(f"sqlite:///{dest}", create=False)
    try:
        counts = copy.count_jobs()
        assert counts["completed"] == 2 and counts["pending"] >= 201
        assert copy.get_job("a") is not None
    finally:
        copy.close()


def test_backup_refusals_are_one_line(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    taken = tmp_path / "taken.db"
    taken.write_text("mine")
    cases = [
        ((str(taken),), f"backup destination {taken} exists; give a new file name"),
        (
            (str(tmp_path / "no" / "b.db"),),
            f"backup destination folder {tmp_path / 'no'} does not exist",
        ),
        (
            ("--db", "postgresql://localhost/x", str(tmp_path / "b.db")),
            "backup copies a SQLite database; for PostgreSQL use pg_dump",
        ),
    ]
    for argv, message in cases:
        rc, _, err = run(capsys, "backup", *argv)
        assert rc == 2 and err.startswith(PREFIX + message) and err.count("\n") == 1, err
    assert taken.read_text() == "mine"
    assert not (tmp_path / "b.db").exists()


def test_backup_as_a_console_script(db: str, tmp_path: Path) -> None:
    env = dict(os.environ, STATEMACHINE_DB=db)
    result = subprocess.run(
        [str(CLI), "backup", str(tmp_path / "nightly.db")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "nightly.db").stat().st_size > 0
