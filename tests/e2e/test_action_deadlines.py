"""Timers and dwell limits while a `bash` action runs, in real processes (issue 17 item 3):
the command's whole process group is killed and the deadline's transition is taken."""

from __future__ import annotations

import os
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from statemachine_engine.database import Store

Popen = Any


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def started_bash(workdir: Path, wait_until: Callable[..., Any]) -> int:
    """The process group of the running command (its shell's pid, written by the shell)."""
    pid_file = workdir / "bash.pid"
    wait_until(lambda: pid_file.exists() and pid_file.read_text().strip(), 10, "bash started")
    pgid = int(pid_file.read_text())
    assert not group_gone(pgid)
    return pgid


def events(store: Store, name: str) -> list[tuple[str | None, str | None, str | None]]:
    return [(r.from_state, r.to_state, r.event) for r in reversed(store.history(machine=name))]


def test_timeout_interrupts_a_running_bash_and_kills_its_group(
    run_machine: Callable[..., Popen],
    store: Store,
    workdir: Path,
    tmp_path: Path,
    wait_until: Callable[..., Any],
) -> None:
    config = write(
        workdir / "sleeper.yaml",
        """
        name: sleeper
        initial_state: working
        metadata: {machine_name: sleeper}
        actions:
          working:
            - type: bash
              command: "echo $$ > bash.pid; sleep 10; echo finished > bash.done"
              timeout: 60
              success: done
        transitions:
          - {from: working, to: finished, event: done}
          - {from: working, to: timed_out, event: timeout(2)}
        """,
    )
    machine = run_machine(config)
    pgid = started_bash(workdir, wait_until)
    seen = time.monotonic()
    assert machine.wait(timeout=30) == 0  # timed_out is final: the machine ends
    took = time.monotonic() - seen
    assert took < 9, took  # well before the sleep's 10 s: the timer cut it short
    assert events(store, "sleeper") == [("working", "timed_out", "timeout(2)")]
    wait_until(lambda: group_gone(pgid), 5, "the command's process group killed")
    assert not (workdir / "bash.done").exists()
    status = store.get_machine("sleeper")
    assert status is not None and status.current_state == "timed_out"
    # The timer counts from entering the state: about 2 s passed from entry to transition.
    (step,) = store.history(machine="sleeper")
    assert status.started_at is not None
    assert 1.9 <= step.created_at - status.started_at < 8, step.created_at - status.started_at
    log = next((tmp_path / "logs").glob("sleeper-*.log")).read_text()
    assert "timeout(2) fired in state 'working'; BashAction was cancelled" in log


def test_max_dwell_sends_stuck_mid_action_and_alerts(
    run_machine: Callable[..., Popen],
    store: Store,
    workdir: Path,
    tmp_path: Path,
    wait_until: Callable[..., Any],
) -> None:
    config = write(
        workdir / "dweller.yaml",
        """
        name: dweller
        initial_state: working
        metadata: {machine_name: dweller}
        options:
          max_dwell: {working: 2}
        actions:
          working:
            - type: bash
              command: "echo $$ > bash.pid; sleep 10; echo finished > bash.done"
              timeout: 60
              success: done
        transitions:
          - {from: working, to: finished, event: done}
          - {from: working, to: escalated, event: stuck}
        """,
    )
    machine = run_machine(config)
    pgid = started_bash(workdir, wait_until)
    assert machine.wait(timeout=30) == 0
    assert events(store, "dweller") == [("working", "escalated", "stuck")]
    wait_until(lambda: group_gone(pgid), 5, "the command's process group killed")
    assert not (workdir / "bash.done").exists()
    alerts = [r for r in store.realtime_since(0, 10_000) if r.kind == "stuck"]
    assert len(alerts) == 1
    assert alerts[0].machine_name == "dweller"
    assert alerts[0].payload["state"] == "working"
    assert alerts[0].payload["seconds"] == 2
    assert alerts[0].payload["event"] == "stuck"
    log = next((tmp_path / "logs").glob("dweller-*.log")).read_text()
    assert "WARNING" in log and "[dweller] stuck: in state working for 2 s" in log


def test_a_timeout_during_a_jobs_command_fails_the_attempt(
    run_machine: Callable[..., Popen],
    cli: Callable[..., Any],
    store: Store,
    workdir: Path,
    wait_until: Callable[..., Any],
) -> None:
    config = write(
        workdir / "worker.yaml",
        """
        name: worker
        initial_state: waiting
        metadata: {machine_name: worker}
        options:
          jobs: {slow: {max_attempts: 1}}
        actions:
          waiting:
            - {type: check_database_queue, job_type: slow}
          processing:
            - type: bash
              command: "echo $$ > bash.pid; sleep 10"
              timeout: 60
              success: job_done
        transitions:
          - {from: waiting, to: processing, event: new_job}
          - {from: waiting, to: waiting, event: no_jobs}
          - {from: processing, to: waiting, event: job_done}
          - {from: processing, to: waiting, event: timeout(1)}
        """,
    )
    cli("add-job", "slow-1", "--type", "slow")
    run_machine(config)
    pgid = started_bash(workdir, wait_until)

    def ended() -> Any:
        job = store.get_job("slow-1")
        return job if job is not None and job.status not in ("pending", "processing") else None

    job = wait_until(ended, 20, "the job's attempt ended")
    assert job.status == "failed" and job.attempts == 1
    assert "timeout(1) fired in state 'processing'" in (job.error_message or "")
    wait_until(lambda: group_gone(pgid), 5, "the command's process group killed")
