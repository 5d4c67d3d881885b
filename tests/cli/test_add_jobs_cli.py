"""`statemachine-cli add-jobs --input-file FILE|-`: JSON Lines in one transaction; a bad line
is FILE:LINE: what, exit 2, nothing added; the workers are woken once per job type."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from statemachine_engine.cli.db import main
from statemachine_engine.database.connect import open_store
from statemachine_engine.database.sqlite import SQLiteStore

CLI = Path(sys.executable).parent / "statemachine-cli"
PREFIX = "statemachine-cli: error: "


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SQLiteStore]:
    path = tmp_path / "sm.db"
    monkeypatch.setenv("STATEMACHINE_DB", f"sqlite:///{path}")
    store = SQLiteStore(str(path))
    yield store
    store.close()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(["add-jobs", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def error_line(result: tuple[int, str, str]) -> str:
    rc, _, err = result
    assert rc == 2 and len(err.splitlines()) == 1 and err.startswith(PREFIX), result
    return err[len(PREFIX) :].strip()


def test_a_file_of_jobs_is_added_in_order_with_defaults(
    db: SQLiteStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [
        {"job_id": "a", "data": {"n": 1}},
        {"id": "b", "type": "other", "payload": [1], "priority": 1, "max_attempts": 7},
        {"job_id": "c", "run_after": "2030-01-01T00:00:00Z", "machine_type": "m"},
        {"job_id": "d", "delay": 60},
    ]
    source = tmp_path / "jobs.jsonl"
    source.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")
    rc, out, _ = run(capsys, "--input-file", str(source), "--type", "t", "--priority", "3")
    assert rc == 0 and out.strip() == "added 4 job(s)"
    a, b, c, d = (db.get_job(i) for i in "abcd")
    assert a and (a.job_type, a.data, a.priority, a.max_attempts) == ("t", {"n": 1}, 3, 3)
    assert b and (b.job_type, b.data, b.priority, b.max_attempts) == ("other", [1], 1, 7)
    assert c and c.run_after == 1893456000.0 and c.machine_type == "m"
    assert d and d.run_after > d.created_at + 59


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"job_id": "x"}\n', "<stdin>:1: no job_type (give it on the line or with --type)"),
        ('{"job_type": "t"}\n[1]\n', "<stdin>:2: expected a JSON object, got list"),
        ('{"job_type": "t", "colour": 1}\n', "<stdin>:1: unknown key 'colour'; known keys:"),
        ('{"job_type": "t",}\n', "<stdin>:1:18: not valid JSON:"),
        ('{"job_type": "t", "priority": -1}\n', "<stdin>:1: priority must be an integer >= 0"),
        ('{"job_type": "t", "job_id": "a b"}\n', "<stdin>:1: job_id 'a b' "),
        ('{"job_type": "t", "delay": 1, "run_after": 2}\n', "<stdin>:1: give either delay or"),
        ('{"job_type": "t", "run_after": "soon"}\n', "<stdin>:1: run_after: expected an ISO"),
        ('{"job_type": "t", "data": NaN}\n', "<stdin>:1: NaN is not a JSON value"),
    ],
)
def test_a_bad_line_names_where_and_adds_nothing(
    db: SQLiteStore,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    text: str,
    message: str,
) -> None:
    monkeypatch.setattr(sys, "stdin", _Stdin(text))
    assert error_line(run(capsys, "-i", "-")).startswith(message)
    assert db.count_jobs()["pending"] == 0


def test_an_existing_id_adds_nothing_unless_if_absent(
    db: SQLiteStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db.add_job("t", job_id="old")
    source = tmp_path / "jobs.jsonl"
    source.write_text('{"job_id": "new"}\n{"job_id": "old"}\n')
    line = error_line(run(capsys, "-i", str(source), "--type", "t"))
    assert (
        line
        == "job 'old' already exists; nothing was added (use --if-absent to skip existing jobs)"
    )
    assert db.get_job("new") is None
    rc, out, _ = run(capsys, "-i", str(source), "--type", "t", "--if-absent", "--json")
    assert rc == 0 and json.loads(out) == {"added": ["new"], "skipped": 1}


def test_a_missing_file_is_one_line_and_creates_no_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "never.db"
    monkeypatch.setenv("STATEMACHINE_DB", f"sqlite:///{target}")
    assert error_line(run(capsys, "-i", str(tmp_path / "nope.jsonl"), "--type", "t")).startswith(
        f"cannot read {tmp_path / 'nope.jsonl'}"
    )
    assert not target.exists()


def test_the_console_script_reads_stdin_and_rings_each_job_type_once(
    db: SQLiteStore, runtime_dir: Path
) -> None:
    doorbell = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    doorbell.bind(str(runtime_dir / "worker.sock"))
    doorbell.settimeout(10)
    lines = "".join(json.dumps({"job_type": t}) + "\n" for t in ["a", "b", "a", "a"] * 250)
    proc = subprocess.run(
        [str(CLI), "--db", db.url, "add-jobs", "-i", "-"],
        input=lines,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "added 1000 job(s)", proc.stderr
    assert db.count_jobs()["pending"] == 1000
    rung = sorted(json.loads(doorbell.recv(4096))["job_type"] for _ in range(2))
    assert rung == ["a", "b"]
    doorbell.setblocking(False)
    with pytest.raises(BlockingIOError):
        doorbell.recv(4096)  # once per type, not once per job
    doorbell.close()
    assert open_store(db.url).count_jobs()["pending"] == 1000


class _Stdin:
    """A stand-in for sys.stdin with a bytes buffer."""

    def __init__(self, text: str) -> None:
        self.buffer = io.BytesIO(text.encode())
