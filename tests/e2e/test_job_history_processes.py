"""Job history end to end (issue 16 items 1 and 7): a real machine process runs a job whose
`bash` fails once and then succeeds; the timeline read through the API shows both attempts
with the command as run, its exit code and stderr, and the process's JSON log lines carry
the failed attempt as a WARNING with its fields."""

from __future__ import annotations

import json
import subprocess
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from statemachine_engine.database import Store
from statemachine_engine.monitoring import UiConfig, create_app

pytestmark = pytest.mark.timeout(60)
Popen = subprocess.Popen[str]

# The first attempt finds no marker file: it writes it, says why on stderr and exits 3.
# The second finds the marker and succeeds.
WORKER = """\
name: Flaky Worker
initial_state: waiting
metadata: {machine_name: flaky}
states: [waiting, processing, stopped]
events: [new_job, no_jobs, job_done, error, stop]
actions:
  waiting:
    - type: check_database_queue
      job_type: flaky
  processing:
    - type: bash
      command: >-
        if [ -e marker-{job_id} ]; then echo ok {data.n};
        else touch marker-{job_id}; echo 'disk full on /data' >&2; echo detail >&2; exit 3; fi
      success: job_done
transitions:
  - {from: waiting, to: processing, event: new_job}
  - {from: waiting, to: waiting, event: no_jobs}
  - {from: processing, to: waiting, event: job_done}
  - {from: processing, to: waiting, event: error}
  - {from: "*", to: stopped, event: stop}
"""


def test_a_failed_then_retried_job_reads_back_through_the_api(
    run_machine: Callable[..., Popen],
    cli: Callable[..., Any],
    store: Store,
    db_url: str,
    workdir: Path,
    tmp_path: Path,
    wait_machine: Callable[..., Any],
    wait_until: Callable[..., Any],
) -> None:
    config = workdir / "flaky.yaml"
    config.write_text(textwrap.dedent(WORKER))
    proc = run_machine(
        config, None, None, "--backoff-base", "0.05", "--log-json", "--log-level", "DEBUG"
    )
    wait_machine(proc, "flaky", "waiting")
    cli("add-job", "J1", "--type", "flaky", "--data", '{"n": 7}')

    def completed() -> bool:
        job = store.get_job("J1")
        return job is not None and job.status == "completed"

    wait_until(completed, 20, "job J1 completed on its second attempt")

    app = create_app(UiConfig(db_url=db_url, fallback_interval=0.05))
    with TestClient(app, base_url="http://127.0.0.1:3001") as client:
        body = client.get("/api/jobs/J1/timeline").json()
    assert body["job"]["status"] == "completed" and body["job"]["attempts"] == 2
    first, second = body["attempts"]
    assert [(a["attempt"], a["worker"], a["outcome"]) for a in (first, second)] == [
        (1, "flaky", "failed"),
        (2, "flaky", "completed"),
    ]
    assert first["error"].startswith("exit code 3: disk full on /data")
    (bash,) = first["actions"]
    assert bash["action"] == "bash" and bash["state"] == "processing"
    assert bash["command"].startswith("if [ -e marker-J1 ]; then echo ok 7;")
    assert bash["exit_code"] == 3
    assert bash["stderr_tail"] == "disk full on /data\ndetail\n"
    (ok,) = second["actions"]
    assert (ok["exit_code"], ok["stdout_tail"], ok["stderr_tail"]) == (0, "ok 7\n", "")
    for attempt in (first, second):
        assert [(t["from"], t["to"]) for t in attempt["transitions"]] == [
            ("waiting", "processing"),
            ("processing", "waiting"),
        ]
    assert [t["event"] for t in first["transitions"]] == ["new_job", "error"]

    log = _stop_and_read_log(proc, tmp_path)
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    (warning,) = [r for r in lines if r["level"] == "warning" and "attempt 1" in r["message"]]
    assert (
        "job J1 attempt 1 of 3 failed: exit code 3: disk full on /data [...]"
        in (warning["message"])
    )
    assert (warning["job_id"], warning["attempt"], warning["exit_code"]) == ("J1", 1, 3)
    assert warning["machine"] == "flaky"
    moved = [r for r in lines if "processing --error--> waiting" in r["message"]]
    assert moved, "the transition line"
    assert {k: moved[0][k] for k in ("machine", "state", "event")} == {
        "machine": "flaky",
        "state": "waiting",
        "event": "error",
    }
    assert isinstance(moved[0]["step"], int)
    debug = [r["message"] for r in lines if r["level"] == "debug"]
    assert any("bash runs: if [ -e marker-J1 ]" in m for m in debug)
    assert any("bash exit code 3" in m and "disk full on /data" in m for m in debug)


def _stop_and_read_log(proc: Popen, tmp_path: Path) -> str:
    from .conftest import stop_process

    assert stop_process(proc) == 0
    (log,) = (tmp_path / "logs").glob("flaky-*.log")
    return log.read_text()
