"""The batch-controller pattern as real processes: a controller claims each job by id and
hands it to a worker machine it starts; only the worker ends the job, and a worker's death
fails the attempt (DESIGN §13.1)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from statemachine_engine.database import Store

pytestmark = pytest.mark.timeout(120)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "batch_controller"
Popen = subprocess.Popen[str]


def statuses(store: Store, *job_ids: str) -> list[str | None]:
    return [getattr(store.get_job(job_id), "status", None) for job_id in job_ids]


def test_each_job_is_ended_by_its_worker_and_a_crash_is_retried(
    run_machine: Callable[..., Popen],
    cli: Callable[..., Any],
    store: Store,
    workdir: Path,
    wait_machine: Callable[..., Any],
    wait_until: Callable[..., Any],
) -> None:
    controller = run_machine(EXAMPLE / "controller.yaml")
    wait_machine(controller, "batch_controller", "checking")
    titles = {"r1": "Quarterly", "r2": "it's $HOME; `id`", "r3": "will crash once"}
    cli("add-job", "r1", "--type", "report", "--data", '{"title": "Quarterly"}')
    cli("add-job", "r2", "--type", "report", "--data", '{"title": "it\'s $HOME; `id`"}')
    cli(
        "add-job", "r3", "--type", "report", "--data", '{"title": "will crash once", "crash": true}'
    )

    wait_until(lambda: statuses(store, "r1", "r2", "r3") == ["completed"] * 3, 60, "3 reports")
    for job_id, title in titles.items():
        job = store.get_job(job_id)
        assert job is not None
        assert job.result == title
        assert job.lease_owner is None
    crashed = store.get_job("r3")
    assert crashed is not None and crashed.attempts == 2
    assert "machine report_r3 exited with code -9" in crashed.errors[0]
    assert [store.get_job(j).attempts for j in ("r1", "r2")] == [1, 1]  # type: ignore[union-attr]

    lines = (workdir / "data" / "batch_controller" / "reports.log").read_text().splitlines()
    assert sorted(lines) == sorted(f"{job_id}: {title}" for job_id, title in titles.items())
    history = store.history(machine="batch_controller", limit=500)
    assert all(row.job_id is None or row.event != "started" for row in history)
    wait_machine(controller, "batch_controller", "checking")


def test_a_worker_that_dies_at_start_never_completes_the_job(
    run_machine: Callable[..., Popen],
    cli: Callable[..., Any],
    store: Store,
    workdir: Path,
    wait_machine: Callable[..., Any],
    wait_until: Callable[..., Any],
) -> None:
    broken = workdir / "broken.yaml"
    broken.write_text("name: broken\ninitial_state: a\nstates: [a]\nbogus: 1\n")
    text = (EXAMPLE / "controller.yaml").read_text()
    controller_file = workdir / "controller.yaml"
    controller_file.write_text(text.replace("yaml_path: worker.yaml", f"yaml_path: {broken}"))
    controller = run_machine(controller_file)
    wait_machine(controller, "batch_controller", "checking")
    cli("add-job", "doomed", "--type", "report", "--data", '{"title": "x"}', "--max-attempts", "2")

    wait_until(lambda: statuses(store, "doomed") == ["failed"], 60, "the job failed for good")
    job = store.get_job("doomed")
    assert job is not None and job.attempts == 2
    assert all("exited with code 2" in error for error in job.errors), job.errors
    wait_machine(controller, "batch_controller", "checking")
