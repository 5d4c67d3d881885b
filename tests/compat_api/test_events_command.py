"""`statemachine-events` tails the live stream in the terminal: only rows committed after it
started, filtered by `--machine`, as JSON lines with the 1.0 keys or as human lines."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

from statemachine_engine.database import open_store

BIN = Path(sys.executable).parent
DEADLINE = 60.0


def _lines(stream: IO[str]) -> queue.Queue[str]:
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line.rstrip("\n"))

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _start(
    url: str, *options: str, cwd: Path
) -> tuple[subprocess.Popen[str], queue.Queue[str], list[str]]:
    """Start the command and wait until it follows the stream; its earlier stderr lines."""
    proc = subprocess.Popen(
        [str(BIN / "statemachine-events"), "--db", url, *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
    )
    assert proc.stderr is not None and proc.stdout is not None
    errors = _lines(proc.stderr)
    before: list[str] = []
    while not (line := errors.get(timeout=DEADLINE)).startswith("statemachine-events: following"):
        before.append(line)
    return proc, _lines(proc.stdout), before


def test_json_lines_of_one_machine(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sm.db'}"
    store = open_store(url)
    store.add_realtime("m1", "activity", {"message": "before the tail started"})
    proc, out, before = _start(url, "--format", "json", "--machine", "m1", cwd=tmp_path)
    assert before == []
    try:
        store.add_realtime("other", "activity", {"message": "not this machine"})
        store.add_realtime(
            "m1", "state_change", {"from_state": "a", "to_state": "b", "event": "go"}
        )
        event = json.loads(out.get(timeout=DEADLINE))
        assert event["machine_name"] == "m1"
        assert event["type"] == event["kind"] == "state_change"
        assert event["payload"]["event_trigger"] == "go"
        assert event["payload"]["to_state"] == "b"
        store.add_realtime("m1", "activity", {"message": "last"})
        assert json.loads(out.get(timeout=DEADLINE))["payload"]["message"] == "last"
        assert out.empty()  # neither the row written before it started nor other machines
    finally:
        proc.terminate()
        proc.wait(timeout=DEADLINE)
        store.close()


def test_human_lines_until_the_duration_ends(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sm.db'}"
    store = open_store(url)
    proc, out, before = _start(url, "--duration", "30", "--port", "3002", cwd=tmp_path)
    assert before == [
        "note: --host/--port are ignored: the stream is read from the database (--db)"
    ]
    try:
        store.add_realtime(
            "m1", "state_change", {"from_state": "a", "to_state": "b", "event": "go"}
        )
        assert out.get(timeout=DEADLINE).endswith("] m1: a --go--> b")
    finally:
        proc.terminate()
        proc.wait(timeout=DEADLINE)
        store.close()
    short = subprocess.run(
        [str(BIN / "statemachine-events"), "--db", url, "--duration", "0.2"],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert short.returncode == 0, short.stderr


def test_a_missing_database_is_one_line_and_not_created(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(BIN / "statemachine-events"), "--db", f"sqlite:///{tmp_path / 'nope.db'}"],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"statemachine-events: error: no database at {tmp_path / 'nope.db'}"
        " (check --db or STATEMACHINE_DB)"
    ]
    assert not (tmp_path / "nope.db").exists()
