"""examples/approval_flow on a VirtualClock: 72 h of a request (announce, reminder at 24 h,
escalation at 72 h, approval) in well under a second of timers, with a restart at 30 h that
resumes in `reminded` holding the job and keeps the escalation deadline."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from statemachine_engine.clock import VirtualClock
from statemachine_engine.database.sqlite import SQLiteStore

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "approval_flow" / "approval.yaml"
HOUR = 3600.0


def notifications(root: Path) -> list[str]:
    path = root / "data" / "approval_flow" / "notifications.log"
    return path.read_text().splitlines() if path.exists() else []


async def test_72_hours_of_the_approval_flow_with_a_restart(
    machine: Any,
    store: SQLiteStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    until: Any,
) -> None:
    monkeypatch.chdir(tmp_path)
    text = EXAMPLE.read_text()
    clock = VirtualClock()
    store.clock = clock
    started = time.monotonic()
    store.add_job("approval", {"title": "new laptop"}, job_id="req-1")
    first = await machine(text, "approval", clock=clock)
    await first.engine.wait_for(lambda: first.engine.state == "awaiting" and first.engine.parked)
    request_at = clock.now()
    assert notifications(tmp_path) == ["announcing req-1: new laptop"]

    clock.advance(24 * HOUR - 1)
    await first.engine.wait_parked()
    assert first.engine.state == "awaiting", "no reminder before 24 h"
    clock.advance(1)
    await first.engine.wait_for(lambda: first.engine.state == "reminded" and first.engine.parked)
    assert notifications(tmp_path)[1] == "reminding req-1: new laptop (late by 0.0 s)"

    clock.advance(6 * HOUR)  # 30 h: a deploy restarts the machine
    assert await first.stop() == 0
    clock.advance(HOUR)
    second = await machine(text, "approval", clock=clock)
    await second.engine.wait_parked()
    assert second.engine.state == "reminded"
    job = second.engine.runtime.job
    assert job is not None and job.job_id == "req-1"
    assert second.engine.context["data"] == {"title": "new laptop"}

    clock.advance(request_at + 72 * HOUR - clock.now() - 1)
    await second.engine.wait_parked()
    assert second.engine.state == "reminded", "no escalation before 72 h"
    clock.advance(1)
    await second.engine.wait_for(lambda: second.engine.state == "escalated")
    assert notifications(tmp_path)[2] == "escalating req-1: new laptop (late by 0.0 s)"

    store.send_event("approval", "approved", {"by": "carol"})
    second.engine.wake()

    def completed() -> bool:
        found = store.get_job("req-1")
        return found is not None and found.status == "completed"

    await until(completed)
    assert notifications(tmp_path)[3:] == ["approved req-1 by carol"]
    done = store.get_job("req-1")
    assert done is not None and done.attempts == 1
    timers = [r.event for r in store.history(machine="approval") if "timeout" in (r.event or "")]
    assert timers == ["timeout(172800)", "timeout(86400)"]
    assert time.monotonic() - started < 10, "72 h of virtual time in seconds of real time"
