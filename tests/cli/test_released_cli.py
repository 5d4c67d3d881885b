"""The released 1.0 `statemachine-db` commands and options, in-process, plus real runs of the
console script and of `python -m statemachine_engine.cli`."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from statemachine_engine.cli.db import main
from statemachine_engine.database.connect import open_store
from statemachine_engine.database.records import Job, Step
from statemachine_engine.database.store import Store

BIN = Path(sys.executable).parent
PREFIX = "statemachine-cli: error: "


@dataclass
class Result:
    rc: int
    out: str
    err: str

    def one_error_line(self) -> str:
        """Assert the run failed with exit 2 and exactly one stderr line; return it."""
        assert self.rc == 2, (self.rc, self.out, self.err)
        lines = self.err.splitlines()
        assert len(lines) == 1, self.err
        assert lines[0].startswith(PREFIX), lines[0]
        return lines[0][len(PREFIX) :]


@dataclass
class Env:
    db_url: str
    tmp: Path
    capsys: pytest.CaptureFixture[str]

    def run(self, *argv: str) -> Result:
        self.capsys.readouterr()
        rc = main(list(argv))
        out, err = self.capsys.readouterr()
        return Result(rc, out, err)

    def store(self) -> Store:
        return open_store(self.db_url)

    def job(self, job_id: str) -> Job:
        store = self.store()
        try:
            job = store.get_job(job_id)
        finally:
            store.close()
        assert job is not None
        return job


@pytest.fixture
def env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Env]:
    url = f"sqlite:///{tmp_path / 'sm.db'}"
    open_store(url).close()
    runtime = Path(tempfile.mkdtemp(prefix="smrel-"))
    monkeypatch.setenv("STATEMACHINE_DB", url)
    monkeypatch.setenv("STATEMACHINE_RUNTIME_DIR", str(runtime))
    monkeypatch.chdir(tmp_path)
    try:
        yield Env(url, tmp_path, capsys)
    finally:
        shutil.rmtree(runtime, ignore_errors=True)


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def held(env: Env, job_id: str, pid: int) -> str:
    """Add job_id and claim it as worker `w` in process pid on this host; the owner."""
    owner = f"w@{socket.gethostname()}:{pid}"
    store = env.store()
    try:
        store.add_job("t", job_id=job_id)
        assert store.claim_job("t", owner, job_id=job_id, lease_seconds=3600) is not None
    finally:
        store.close()
    return owner


# add-job --input-file


def test_add_job_input_file_puts_the_absolute_path_into_the_data(env: Env) -> None:
    (env.tmp / "in.png").write_bytes(b"x")
    result = env.run("add-job", "J1", "--type", "t", "--input-file", "in.png")
    assert (result.rc, result.out) == (0, "J1\n")
    assert env.job("J1").data == {"input_file_path": str(env.tmp / "in.png")}


def test_add_job_input_file_is_merged_into_the_payload_object(env: Env) -> None:
    (env.tmp / "in.png").write_bytes(b"x")
    payload = '{"size": 3, "input_file_path": "old"}'
    assert (
        env.run("add-job", "J1", "--type", "t", "--payload", payload, "--input-file", "in.png").rc
        == 0
    )
    assert env.job("J1").data == {"size": 3, "input_file_path": str(env.tmp / "in.png")}


def test_add_job_input_file_missing_or_with_a_non_object_payload_is_one_error(env: Env) -> None:
    (env.tmp / "in.png").write_bytes(b"x")
    missing = env.run("add-job", "J1", "--type", "t", "--input-file", "nope.png")
    assert missing.one_error_line() == "--input-file: input file not found: nope.png"
    listed = env.run("add-job", "J1", "--type", "t", "--data", "[1]", "--input-file", "in.png")
    assert "--payload must be a JSON object, got list" in listed.one_error_line()
    assert json.loads(env.run("list-jobs", "--json").out) == []


# details, error-history, --format json


def test_details_is_show_job_with_a_note(env: Env) -> None:
    env.run("add-job", "J1", "--type", "t")
    shown = env.run("show-job", "J1")
    details = env.run("details", "J1")
    assert (details.rc, details.out) == (0, shown.out)
    assert details.err == "note: details is the 1.0 spelling; use show-job\n"
    as_json = env.run("details", "J1", "--format", "json")
    assert json.loads(as_json.out)["job_id"] == "J1"
    assert "use --json" in as_json.err
    assert env.run("details", "nope").one_error_line().endswith("no job 'nope'")


def test_error_history_of_a_job_and_of_the_system(env: Env) -> None:
    env.run("add-job", "J1", "--type", "t")
    env.run("fail-job", "J1", "--reason", "bad input")
    assert env.run("error-history", "J1").out == "1. failed by operator: bad input\n"
    rows = json.loads(env.run("error-history", "--format", "json").out)
    assert [(r["job_id"], r["error_message"]) for r in rows] == [
        ("J1", "failed by operator: bad input")
    ]
    assert {"id", "machine", "error_message", "job_id", "timestamp"} <= set(rows[0])
    assert json.loads(env.run("error-history", "--machine", "other", "--json").out) == []
    assert "no errors recorded" in env.run("error-history", "--machine", "other").out


def test_format_json_keeps_the_released_keys_of_machine_state_and_history(env: Env) -> None:
    store = env.store()
    try:
        store.register_machine(
            "w1",
            "idle",
            pid=os.getpid(),
            hostname=socket.gethostname(),
            config_path="w.yaml",
            definition_name="w",
            definition_hash="h",
            definition_text="{}",
            at=time.time(),
        )
        store.commit_step(Step("w1", time.time(), 1, "idle", "busy", "go"))
    finally:
        store.close()
    machines = json.loads(env.run("machine-state", "--format", "json").out)
    assert {"machine_name", "current_state", "last_activity", "pid", "metadata"} <= set(machines[0])
    history = env.run("transition-history", "--hours", "1", "--format", "json")
    (row,) = json.loads(history.out)
    assert (row["machine"], row["from_state"], row["to_state"], row["event"]) == (
        "w1",
        "idle",
        "busy",
        "go",
    )
    assert "timestamp" in row
    assert history.err == "note: --format json is the 1.0 spelling; use --json\n"
    one = env.run("machine-status", "--machine", "w1", "--json")
    assert json.loads(one.out)["machine_name"] == "w1"
    assert one.err == "note: --machine NAME is the 1.0 spelling; use machine-status NAME\n"
    missing = env.run("machine-status", "--machine", "nope").one_error_line()
    assert missing == "no machine 'nope' has run against this database"


# complete-job, fail-job, remove-job


def test_complete_job_takes_a_pending_job_and_completes_it(env: Env) -> None:
    env.run("add-job", "J1", "--type", "t")
    result = env.run("complete-job", "J1")
    assert (result.rc, result.out) == (0, "job 'J1' completed by operator\n")
    job = env.job("J1")
    assert (job.status, job.attempts, job.result) == ("completed", 1, {"completed_by": "operator"})
    again = env.run("complete-job", "J1")
    assert (again.rc, again.out) == (0, "job 'J1' is already completed\n")
    env.run("add-job", "J2", "--type", "t")
    env.run("fail-job", "J2")
    assert "is failed; retry-job" in env.run("complete-job", "J2").one_error_line()
    assert env.run("complete-job", "nope").one_error_line() == "no job 'nope'"


def test_a_job_a_live_worker_runs_is_not_ended_without_force(env: Env) -> None:
    owner = held(env, "J1", os.getpid())  # this test process: alive, lease valid
    for command in ("complete-job", "fail-job"):
        line = env.run(command, "J1").one_error_line()
        assert f"is being run by {owner}, which is alive" in line
        assert "--force" in line
    assert env.job("J1").status == "processing"
    assert env.run("fail-job", "J1", "--error", "stuck", "--force").rc == 0
    job = env.job("J1")
    assert (job.status, job.errors) == ("failed", ("failed by operator: stuck",))
    store = env.store()
    try:  # the worker's own outcome comes too late and is discarded
        assert store.complete_job("J1", owner) is False
    finally:
        store.close()


def test_a_job_whose_worker_is_gone_is_ended_without_force(env: Env) -> None:
    held(env, "J1", dead_pid())
    assert env.run("complete-job", "J1").rc == 0
    assert env.job("J1").status == "completed"


def test_a_job_scheduled_for_later_cannot_be_taken(env: Env) -> None:
    env.run("add-job", "J1", "--type", "t", "--delay", "3600")
    line = env.run("fail-job", "J1").one_error_line()
    assert "could not be taken" in line and "cancel-job" in line
    assert env.job("J1").status == "pending"


def test_fail_job_fails_a_pending_job_for_good(env: Env) -> None:
    env.run("add-job", "J1", "--type", "t", "--max-attempts", "5")
    result = env.run("fail-job", "J1", "--reason", "bad input")
    assert (
        result.out == "job 'J1' failed (failed by operator: bad input); retry-job runs it again\n"
    )
    assert env.job("J1").status == "failed"
    assert env.run("fail-job", "J1").out == "job 'J1' is already failed\n"


def test_remove_job_cancels_a_pending_job_and_refuses_others(env: Env) -> None:
    env.run("add-job", "J1", "--type", "t")
    removed = env.run("remove-job", "J1", "--reason", "typo")
    assert (removed.rc, env.job("J1").status) == (0, "cancelled")
    assert removed.err == "note: remove-job is the 1.0 spelling; use cancel-job\n"
    assert env.run("remove-job", "J1").out == "job 'J1' is already cancelled\n"
    held(env, "J2", os.getpid())
    assert "fail-job stops it" in env.run("remove-job", "J2").one_error_line()
    env.run("add-job", "J3", "--type", "t")
    env.run("complete-job", "J3")
    assert "prune --older-than" in env.run("remove-job", "J3").one_error_line()


# cleanup, cleanup-events, process-events, removed commands


def test_cleanup_completed_prunes_with_a_note_and_refuses_other_statuses(env: Env) -> None:
    env.run("add-job", "J1", "--type", "t")
    env.run("complete-job", "J1")
    env.run("add-job", "J2", "--type", "t")
    result = env.run("cleanup", "--status", "completed")
    assert result.rc == 0 and "jobs 1" in result.out
    assert "use prune --older-than DURATION" in result.err
    assert [j["job_id"] for j in json.loads(env.run("list-jobs", "--json").out)] == ["J2"]
    for status, hint in (("pending", "cancel-job"), ("processing", "reset-processing")):
        assert hint in env.run("cleanup", "--status", status).one_error_line()
    assert "never deleted" in env.run("cleanup", "--status", "failed").one_error_line()


def test_process_events_and_cleanup_events(env: Env) -> None:
    env.run("send-event", "--target", "w", "--type", "go")
    listed = env.run("process-events", "w")
    assert listed.out.splitlines()[1].split()[1:4] == ["w", "go", "pending"]
    cleared = env.run("cleanup-events")
    assert cleared.out == "marked 1 pending event(s) processed\n"
    assert "no events match" in env.run("process-events", "w").out
    assert "prune" in env.run("cleanup-events", "--status", "processed").one_error_line()


@pytest.mark.parametrize(
    ("argv", "hint"),
    [
        (["list-errors", "--limit", "5", "--format", "json"], "use error-history"),
        (["machine-health"], "use machine-status"),
        (["controller-log", "--limit", "3"], "no controller log"),
        (["recreate-database", "--force"], "delete the SQLite file"),
    ],
)
def test_removed_commands_name_their_replacement(env: Env, argv: list[str], hint: str) -> None:
    line = env.run(*argv).one_error_line()
    assert line.startswith(f"{argv[0]} was removed in 2.0: ") and hint in line


# real processes


def test_the_console_script_adds_a_job_with_an_input_file(env: Env) -> None:
    (env.tmp / "in.png").write_bytes(b"x")
    proc = subprocess.run(
        [str(BIN / "statemachine-db"), "add-job", "J1", "--type", "t", "--input-file", "in.png"],
        capture_output=True,
        text=True,
        cwd=env.tmp,
        timeout=60,
    )
    assert (proc.returncode, proc.stdout) == (0, "J1\n"), proc.stderr
    assert env.job("J1").data == {"input_file_path": str(env.tmp / "in.png")}


def test_python_m_statemachine_engine_cli_lists_the_programs_or_runs_a_machine() -> None:
    listing = subprocess.run(
        [sys.executable, "-m", "statemachine_engine.cli"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listing.returncode == 0
    assert "statemachine-cli" in listing.stdout and "statemachine-up" in listing.stdout
    run = subprocess.run(
        [sys.executable, "-m", "statemachine_engine.cli", "/nonexistent/worker.yaml"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert run.stderr.startswith("statemachine: error: /nonexistent/worker.yaml: ")
