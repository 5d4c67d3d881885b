"""The CLI applies the one name rule to new job ids and event names: one line, exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from statemachine_engine.database.connect import open_store

CLI = Path(sys.executable).parent / "statemachine-cli"


def run(db: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), "--db", f"sqlite:///{db}", *argv],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "job_id", ["a/b", "a\nb", "a\u202eb", "x" * 101, "-", "job one", "y" * 100_000]
)
def test_add_job_refuses_bad_ids_in_one_line(tmp_path: Path, job_id: str) -> None:
    db = tmp_path / "sm.db"
    open_store(f"sqlite:///{db}").close()
    argv = ["add-job", "--type", "t", "--", job_id] if job_id.startswith("-") else None
    result = run(db, *(argv or ["add-job", job_id, "--type", "t"]))
    assert result.returncode == 2, result
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "invalid job id" in lines[0], result.stderr[:300]
    assert len(lines[0]) < 400
    store = open_store(f"sqlite:///{db}")
    try:
        assert store.list_jobs() == []
    finally:
        store.close()


def test_send_event_refuses_a_bad_event_name(tmp_path: Path) -> None:
    db = tmp_path / "sm.db"
    result = run(db, "send-event", "--target", "w", "--type", "go\nnow")
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1
    assert "invalid event name" in result.stderr


def test_add_job_accepts_a_good_id(tmp_path: Path) -> None:
    db = tmp_path / "sm.db"
    result = run(db, "add-job", "order:2026-12-01.1", "--type", "t")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "order:2026-12-01.1"
