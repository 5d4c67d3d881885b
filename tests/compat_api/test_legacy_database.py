"""A database written by the released package (1.0.91, installed in its own venv and driven
by its own CLI and models) is migrated in place when 2.0 opens it: pending jobs stay
runnable, events stay pending, state changes become history; the 1.0 tables are kept.
A 1.0 `pipeline.db` next to the default database is pointed out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import apsw
import pytest

from statemachine_engine.database import open_store

BIN = Path(sys.executable).parent
TIMEOUT = 300
MIGRATED = "migrated the statemachine-engine 1.0 database"

RELEASED_HISTORY = """
from statemachine_engine.database.models import get_job_model, get_realtime_event_model
events = get_realtime_event_model()
for source, target, trigger in [("waiting", "processing", "new_job"),
                                ("processing", "waiting", "job_done")]:
    events.log_event("worker", "state_change",
                     {"from_state": source, "to_state": target, "event_trigger": trigger})
events.log_event("worker", "activity_log", {"message": "not a transition"})
assert get_job_model().claim_job("j-held")
"""


def _released(bindir: Path, cwd: Path, *argv: str) -> None:
    result = subprocess.run(
        [str(bindir / argv[0]), *argv[1:]], cwd=cwd, capture_output=True, text=True,
        timeout=TIMEOUT,
    )  # fmt: skip
    assert result.returncode == 0, (argv, result.stdout[-2000:], result.stderr[-2000:])


def _columns(path: Path, table: str) -> set[str]:
    db = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return {str(row[1]) for row in db.execute(f"PRAGMA table_info({table})")}
    finally:
        db.close()


@pytest.fixture(scope="module")
def legacy_db(released_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """data/pipeline.db as the released package leaves it, in a fresh working directory."""
    work = tmp_path_factory.mktemp("released")
    db = "statemachine-db"
    _released(released_bin, work, db, "add-job", "j-first", "--type", "render",
              "--payload", '{"image": "a.png"}')  # fmt: skip
    _released(released_bin, work, db, "add-job", "j-held", "--type", "render")
    _released(released_bin, work, db, "add-job", "j-done", "--type", "render")
    _released(released_bin, work, db, "add-job", "j-bad", "--type", "render")
    _released(released_bin, work, db, "complete-job", "j-done")
    _released(released_bin, work, db, "fail-job", "j-bad", "--reason", "boom")
    _released(released_bin, work, db, "send-event", "--target", "worker", "--type", "go",
              "--payload", '{"x": 1}')  # fmt: skip
    _released(released_bin, work, "python", "-c", RELEASED_HISTORY)
    path = work / "data" / "pipeline.db"
    assert "run_after" not in _columns(path, "jobs")  # really the 1.0 schema
    return path


def _cli(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "statemachine-cli"), *argv], cwd=cwd, capture_output=True, text=True,
        timeout=TIMEOUT,
    )  # fmt: skip


def _json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_released_database_is_migrated_in_place(legacy_db: Path, tmp_path: Path) -> None:
    copy = tmp_path / "pipeline.db"
    copy.write_bytes(legacy_db.read_bytes())
    url = f"sqlite:///{copy}"

    listed = _cli("list-jobs", "--json", "--db", url, cwd=tmp_path)
    assert MIGRATED in listed.stderr
    assert "4 jobs (2 pending), 1 events, 2 transitions" in listed.stderr
    jobs = {job["job_id"]: job for job in _json(listed)}
    assert {j: jobs[j]["status"] for j in jobs} == {
        "j-first": "pending",
        "j-held": "pending",  # its 1.0 worker cannot run against the new schema
        "j-done": "completed",
        "j-bad": "failed",
    }
    assert jobs["j-first"]["data"] == {"image": "a.png"}
    assert "boom" in jobs["j-bad"]["error_message"]
    assert all(isinstance(job["created_at"], float) for job in jobs.values())

    history = _json(_cli("history", "--json", "--db", url, cwd=tmp_path))
    moves = [(h["from_state"], h["to_state"], h["event"]) for h in history]
    assert moves == [("waiting", "processing", "new_job"), ("processing", "waiting", "job_done")]

    again = _cli("list-events", "--json", "--db", url, cwd=tmp_path)
    assert MIGRATED not in again.stderr  # once only
    (event,) = _json(again)
    assert (event["target_machine"], event["event_type"], event["status"]) == (
        "worker",
        "go",
        "pending",
    )

    store = open_store(url)
    try:
        claimed = store.claim_job("render", "tester")
        assert claimed is not None and claimed.job_id == "j-first"
        delivered = store.next_event("worker")
        assert delivered is not None and delivered.payload == {"x": 1}
    finally:
        store.close()
    kept = _columns(copy, "legacy_1_0_jobs")
    assert {"id", "source_job_id", "metadata"} <= kept  # the 1.0 rows stay for inspection


def test_a_legacy_file_next_to_the_default_is_pointed_out(legacy_db: Path, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    legacy = tmp_path / "data" / "pipeline.db"
    legacy.write_bytes(legacy_db.read_bytes())
    added = _cli("add-job", "j1", "--type", "t", cwd=tmp_path)
    assert added.returncode == 0, added.stderr
    notice = [line for line in added.stderr.splitlines() if "pipeline.db" in line]
    assert len(notice) == 1, added.stderr
    assert "using the database ./data/statemachine.db" in notice[0]
    assert "--db sqlite:///./data/pipeline.db" in notice[0]
    assert (tmp_path / "data" / "statemachine.db").is_file()
    assert "run_after" not in _columns(legacy, "jobs")  # left alone
