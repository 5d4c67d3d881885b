"""Process-level guarantees: doorbells across processes, clean SIGTERM, one-line errors with
exit code 2, one process per machine name, events kept for machines that are down."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from statemachine_engine.database import Store

pytestmark = pytest.mark.timeout(30)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
STATEMACHINE = str(Path(sys.executable).parent / "statemachine")
Popen = subprocess.Popen[str]


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def job_status(store: Store, job_id: str) -> str | None:
    job = store.get_job(job_id)
    return None if job is None else job.status


def test_idle_worker_picks_up_a_later_job_within_a_second(
    run_machine: Callable[..., Popen],
    cli: Callable[..., Any],
    store: Store,
    wait_machine: Callable[..., Any],
    wait_until: Callable[..., Any],
) -> None:
    worker = run_machine(EXAMPLES / "simple_worker" / "worker.yaml", safety_interval=60)
    wait_machine(worker, "worker", "waiting")
    time.sleep(1.5)  # the scenario: the worker has been parked for a while
    cli("add-job", "late", "--type", "simple_task", "--data", '{"message": "late"}')
    queued = time.monotonic()
    wait_until(lambda: job_status(store, "late") == "completed", 1.0, "job completed in 1 s")
    assert time.monotonic() - queued < 5  # the safety re-check is 60 s away
    job = store.get_job("late")
    assert job is not None and job.started_at is not None
    assert job.started_at - job.created_at < 1.0


def test_sigterm_during_bash_stops_cleanly_and_releases_the_job(
    run_machine: Callable[..., Popen],
    cli: Callable[..., Any],
    store: Store,
    workdir: Path,
    runtime_dir: Path,
    wait_machine: Callable[..., Any],
    wait_until: Callable[..., Any],
) -> None:
    config = write(
        workdir / "sleeper.yaml",
        """
        name: sleeper
        initial_state: waiting
        metadata: {machine_name: sleeper}
        actions:
          waiting:
            - type: check_database_queue
              job_type: slow
          working:
            - type: bash
              command: "echo $$ > bash.pid; sleep 30"
              timeout: 60
        transitions:
          - {from: waiting, to: working, event: new_job}
          - {from: waiting, to: waiting, event: no_jobs}
          - {from: working, to: waiting, event: job_done}
        """,
    )
    cli("add-job", "slow-1", "--type", "slow")
    machine = run_machine(config)
    wait_machine(machine, "sleeper")
    pid_file = workdir / "bash.pid"
    wait_until(lambda: pid_file.exists() and pid_file.read_text().strip(), 5, "bash started")
    bash_group = int(pid_file.read_text())
    assert job_status(store, "slow-1") == "processing"

    machine.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    assert machine.wait(timeout=3) == 0
    assert time.monotonic() - sent < 10  # the bash child sleeps 30 s

    job = store.get_job("slow-1")
    assert job is not None
    assert (job.status, job.attempts, job.lease_owner) == ("pending", 0, None)
    status = store.get_machine("sleeper")
    assert status is not None and status.status == "stopped"
    assert not (runtime_dir / "sleeper.sock").exists()
    assert not (runtime_dir / "sleeper.lock").exists()

    def bash_gone() -> bool:
        try:
            os.killpg(bash_group, 0)
        except ProcessLookupError:
            return True
        return False

    wait_until(bash_gone, 2, "the bash command and its sleep killed")


BAD_CONFIGS = {
    "undeclared_state": (
        """
        name: bad
        initial_state: waiting
        states: [waiting, working]
        events: [go]
        transitions:
          - {from: waiting, to: wroking, event: go}
        """,
        "wroking",
    ),
    "unknown_action": (
        """
        name: bad
        initial_state: waiting
        actions:
          waiting:
            - type: bsah
              command: echo hi
        transitions:
          - {from: waiting, to: done, event: go}
        """,
        "bsah",
    ),
    "bad_timeout": (
        """
        name: bad
        initial_state: waiting
        transitions:
          - {from: waiting, to: done, event: timeout(0)}
        """,
        "timeout(0)",
    ),
    "unknown_placeholder": (
        """
        name: bad
        initial_state: waiting
        actions:
          waiting:
            - type: bash
              command: echo {jbo_id}
        transitions:
          - {from: waiting, to: done, event: job_done}
        """,
        "{jbo_id}",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_is_one_line_with_position_and_exit_2(
    case: str, workdir: Path, db_url: str, e2e_env: dict[str, str]
) -> None:
    text, culprit = BAD_CONFIGS[case]
    config = write(workdir / f"{case}.yaml", text)
    line = next(
        i for i, row in enumerate(config.read_text().splitlines(), start=1) if culprit in row
    )

    done = subprocess.run(
        [STATEMACHINE, str(config), "--machine-name", "bad", "--db", db_url],
        cwd=workdir,
        env=e2e_env,
        capture_output=True,
        text=True,
        timeout=15,
        check=False,
    )

    assert done.returncode == 2
    assert done.stdout == ""
    errors = done.stderr.splitlines()
    assert len(errors) == 1, done.stderr
    assert re.search(rf"{re.escape(str(config))}:{line}:\d+: ", errors[0]), errors[0]
    assert "Traceback" not in done.stderr


def test_second_process_with_the_same_machine_name_exits_2(
    run_machine: Callable[..., Popen],
    store: Store,
    workdir: Path,
    db_url: str,
    e2e_env: dict[str, str],
    wait_machine: Callable[..., Any],
) -> None:
    config = EXAMPLES / "simple_worker" / "worker.yaml"
    first = run_machine(config, "twin")
    before = wait_machine(first, "twin", "waiting")

    second = subprocess.run(
        [STATEMACHINE, str(config), "--machine-name", "twin", "--db", db_url],
        cwd=workdir,
        env=e2e_env,
        capture_output=True,
        text=True,
        timeout=15,
        check=False,
    )

    assert second.returncode == 2
    errors = second.stderr.splitlines()
    assert len(errors) == 1, second.stderr
    assert "twin" in errors[0] and "already running" in errors[0]
    assert first.poll() is None
    after = store.get_machine("twin")
    assert after is not None
    assert (after.pid, after.status, after.started_at) == (first.pid, "running", before.started_at)


def test_event_sent_to_a_stopped_machine_is_delivered_when_it_starts(
    run_machine: Callable[..., Popen],
    cli: Callable[..., Any],
    store: Store,
    workdir: Path,
    wait_machine: Callable[..., Any],
) -> None:
    config = write(
        workdir / "greeter.yaml",
        """
        name: greeter
        initial_state: idle
        metadata: {machine_name: greeter}
        states: [idle, greeting, done]
        events: [greet, greeted]
        actions:
          greeting:
            - type: bash
              command: printf 'hello %s\\n' {payload.name} > greeting.txt
              success: greeted
        transitions:
          - {from: idle, to: greeting, event: greet}
          - {from: greeting, to: done, event: greeted}
        """,
    )
    first = run_machine(config)
    wait_machine(first, "greeter", "idle")
    first.terminate()
    assert first.wait(timeout=5) == 0
    status = store.get_machine("greeter")
    assert status is not None and status.status == "stopped"

    name = "O'Brien; $(touch pwned)"
    payload = json.dumps({"name": name})
    sent = cli("send-event", "--target", "greeter", "--type", "greet", "--payload", payload)
    assert "not running" in sent.stdout
    assert not (workdir / "greeting.txt").exists()

    second = run_machine(config)
    assert second.wait(timeout=10) == 0
    assert (workdir / "greeting.txt").read_text() == f"hello {name}\n"
    assert not (workdir / "pwned").exists()
    status = store.get_machine("greeter")
    assert status is not None and (status.current_state, status.status) == ("done", "finished")
    assert [e.status for e in store.list_events(target="greeter")] == ["processed"]
