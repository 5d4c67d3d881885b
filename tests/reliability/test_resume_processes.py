"""`restart: resume` with real processes (issue 17, "done when"): the approval example with
short timers, killed with SIGKILL in `awaiting`, comes back in `awaiting` holding its job,
with its context, and its timer fires at the original deadline (± 0.5 s); killed again in
`reminded` and left down past the escalation deadline, it escalates once at start with
`late_by`; the approval then completes the job on its first attempt. On SQLite and
PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from statemachine_engine.database.connect import open_store
from statemachine_engine.database.store import Store

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "approval_flow" / "approval.yaml"
REMIND, ESCALATE = 3.0, 3.0


def short_approval(workdir: Path) -> Path:
    """The example with its 24 h and 48 h timers cut to seconds."""
    text = EXAMPLE.read_text()
    text = text.replace("timeout(86400)", f"timeout({REMIND:g})")
    text = text.replace("timeout(172800)", f"timeout({ESCALATE:g})")
    assert f"timeout({REMIND:g})" in text and f"timeout({ESCALATE:g})" in text
    path = workdir / "approval.yaml"
    path.write_text(text)
    return path


@pytest.fixture(params=["sqlite", "postgres"])
def backend_url(request: pytest.FixtureRequest, db_path: Path, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield "sqlite:///" + str(db_path)
        return
    from statemachine_engine.database.postgres import testing as pg_testing

    schema = "r_" + hashlib.md5(str(tmp_path).encode(), usedforsecurity=False).hexdigest()[:20]
    url = pg_testing.with_schema(pg_testing.check_server(), schema)
    yield url
    pg_testing.drop_schema(url)


def notifications(workdir: Path) -> list[str]:
    path = workdir / "data" / "approval_flow" / "notifications.log"
    return path.read_text().splitlines() if path.exists() else []


def state_of(store: Store) -> str | None:
    status = store.get_machine("approval")
    return None if status is None else status.current_state


def entered(store: Store, state: str) -> float:
    """When the machine last entered `state`, from its history."""
    rows = [r for r in store.history(machine="approval", limit=100) if r.to_state == state]
    return rows[0].created_at


@pytest.mark.timeout(120)
def test_kill_9_resumes_in_place_with_durable_timers(
    procs: Any, workdir: Path, kit: Any, backend_url: str
) -> None:
    procs.db_url = backend_url
    store = open_store(backend_url)
    try:
        run_kill_and_resume(procs, store, workdir, kit)
    finally:
        store.close()


def run_kill_and_resume(procs: Any, store: Store, workdir: Path, kit: Any) -> None:
    config = short_approval(workdir)
    store.add_job("approval", {"title": "new laptop"}, job_id="req-1")
    first = procs.machine(config, "approval")
    kit.wait_until(lambda: state_of(store) == "awaiting", 30, "the request announced")
    since = entered(store, "awaiting")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=10)

    second = procs.machine(config, "approval")
    kit.wait_until(lambda: "holding job req-1 again" in procs.log(second), 30, "resumed")
    assert "resuming in state awaiting" in procs.log(second)
    assert state_of(store) == "awaiting"
    job = store.get_job("req-1")
    assert job is not None and job.status == "processing"
    assert job.lease_owner == f"approval@{os.uname().nodename}:{second.pid}", "held again"
    kit.wait_until(lambda: state_of(store) == "reminded", 30, "the reminder")
    reminded_at = entered(store, "reminding")
    print(f"reminder fired {reminded_at - since - REMIND:+.3f} s from its original deadline")
    assert abs(reminded_at - (since + REMIND)) <= 0.5, (reminded_at - since, "original deadline")
    lines = notifications(workdir)
    assert lines[0] == "announcing req-1: new laptop"
    assert re.fullmatch(r"reminding req-1: new laptop \(late by 0(\.\d+)? s\)", lines[1]), lines

    due = entered(store, "reminded") + ESCALATE
    os.killpg(second.pid, signal.SIGKILL)
    second.wait(timeout=10)
    kit.wait_until(lambda: time.time() > due + 1.0, 10, "the escalation falling due while down")
    third = procs.machine(config, "approval")
    kit.wait_until(lambda: state_of(store) == "escalated", 30, "the late escalation")
    lines = notifications(workdir)
    [escalation] = [line for line in lines if line.startswith("escalating")]
    match = re.fullmatch(r"escalating req-1: new laptop \(late by ([\d.]+) s\)", escalation)
    assert match is not None, escalation
    assert float(match.group(1)) >= 1.0, "late_by says how long it was overdue"
    assert "fires" in procs.log(third) and "s late" in procs.log(third)

    sent = procs.cli(
        "send-event", "--target", "approval", "--type", "approved",
        "--payload", json.dumps({"by": "dana"}),
    )  # fmt: skip
    assert sent.returncode == 0, sent.stderr

    def completed() -> bool:
        job = store.get_job("req-1")
        return job is not None and job.status == "completed"

    kit.wait_until(completed, 30, "the request completed")
    done = store.get_job("req-1")
    assert done is not None and done.attempts == 1, "one attempt across two kill -9"
    assert notifications(workdir)[-1] == "approved req-1 by dana"
    assert len(notifications(workdir)) == 4, notifications(workdir)
