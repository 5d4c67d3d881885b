"""Each example under examples/ runs as real processes and does what its README says."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from statemachine_engine.database import Store

pytestmark = pytest.mark.timeout(60)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
Popen = subprocess.Popen[str]


def stop_process(proc: Popen) -> int:
    """SIGTERM and the exit code (the machines stop cleanly within a second)."""
    proc.terminate()
    return proc.wait(timeout=5)


def completed(store: Store, job_type: str, count: int) -> bool:
    return store.count_jobs(job_type=job_type).get("completed", 0) >= count


def test_simple_worker_drains_jobs_and_stops_on_event(
    run_machine: Callable[..., Popen],
    cli: Callable[..., Any],
    store: Store,
    workdir: Path,
    wait_machine: Callable[..., Any],
    wait_until: Callable[..., Any],
) -> None:
    worker = run_machine(EXAMPLES / "simple_worker" / "worker.yaml")
    wait_machine(worker, "worker", "waiting")
    messages = {"job-1": "Hello", "job-2": 'it\'s $HOME; `rm -rf /` "quoted"', "job-3": "x" * 50}
    for job_id, message in messages.items():
        cli("add-job", job_id, "--type", "simple_task", "--data", json.dumps({"message": message}))
    wait_until(lambda: completed(store, "simple_task", 3), 5, "3 jobs completed")

    for job_id, message in messages.items():
        output = workdir / "data" / "output" / f"{job_id}.txt"
        assert output.read_text() == f"job {job_id}: {message}\n"
        job = store.get_job(job_id)
        assert job is not None and job.status == "completed" and job.attempts == 1

    sent = cli("send-event", "--target", "worker", "--type", "stop")
    assert "machine woken" in sent.stdout
    assert worker.wait(timeout=5) == 0
    status = store.get_machine("worker")
    assert status is not None
    assert (status.current_state, status.status) == ("stopped", "finished")


def test_simple_worker_fails_a_job_without_message(
    run_machine: Callable[..., Popen],
    cli: Callable[..., Any],
    store: Store,
    wait_machine: Callable[..., Any],
    wait_until: Callable[..., Any],
) -> None:
    worker = run_machine(EXAMPLES / "simple_worker" / "worker.yaml")
    wait_machine(worker, "worker", "waiting")
    cli("add-job", "empty", "--type", "simple_task", "--max-attempts", "1")

    def failed() -> bool:
        job = store.get_job("empty")
        return job is not None and job.status == "failed"

    wait_until(failed, 5, "job failed for good")
    job = store.get_job("empty")
    assert job is not None and "data.message" in (job.error_message or "")
    wait_machine(worker, "worker", "waiting")


def test_controller_worker_round_trip(
    run_machine: Callable[..., Popen],
    cli: Callable[..., Any],
    store: Store,
    workdir: Path,
    wait_machine: Callable[..., Any],
    wait_until: Callable[..., Any],
) -> None:
    example = EXAMPLES / "controller_worker"
    controller = run_machine(example / "controller.yaml")
    worker = run_machine(example / "worker.yaml")
    wait_machine(controller, "controller", "waiting")
    wait_machine(worker, "batch_worker", "idle")
    cli("add-job", "batch-1", "--type", "batch", "--data", '{"text": "the quick brown fox"}')
    cli("add-job", "batch-2", "--type", "batch", "--data", '{"text": "jumps  over the dog"}')
    cli("add-job", "broken", "--type", "batch", "--data", '{"words": 3}', "--max-attempts", "1")
    wait_until(lambda: completed(store, "batch", 2), 5, "2 batches completed")

    results = workdir / "data" / "controller_worker" / "results.log"
    assert wait_until(lambda: results.exists() and results.read_text().splitlines(), 2)
    assert results.read_text().splitlines() == [
        "batch-1: 4 words, by batch_worker",
        "batch-2: 4 words, by batch_worker",
    ]
    out = workdir / "data" / "controller_worker" / "out" / "batch-2.txt"
    assert out.read_text().split() == ["JUMPS", "OVER", "THE", "DOG"]

    def broken_failed() -> bool:
        job = store.get_job("broken")
        return job is not None and job.status == "failed"

    wait_until(broken_failed, 5, "the batch without text failed")
    wait_machine(controller, "controller", "waiting")
    assert stop_process(controller) == 0
    assert stop_process(worker) == 0


def test_pipeline_three_machines(
    run_machine: Callable[..., Popen],
    cli: Callable[..., Any],
    store: Store,
    workdir: Path,
    wait_machine: Callable[..., Any],
    wait_until: Callable[..., Any],
) -> None:
    procs = {
        name: run_machine(EXAMPLES / "pipeline" / f"{name}.yaml")
        for name in ("generator", "processor", "analyzer")
    }
    for name, state in (("generator", "waiting"), ("processor", "waiting"), ("analyzer", "idle")):
        wait_machine(procs[name], name, state)
    for index, records in enumerate((1, 3, 5), start=1):
        cli("add-job", f"gen-{index}", "--type", "generate", "--data", f'{{"records": {records}}}')

    work = workdir / "data" / "pipeline"
    report = work / "report.txt"
    wait_until(lambda: report.exists() and len(report.read_text().splitlines()) == 3, 8)
    assert completed(store, "generate", 3)
    assert sorted(report.read_text().splitlines()) == [
        "gen-1 lines=1 words=5 bytes=22",
        "gen-2 lines=3 words=15 bytes=66",
        "gen-3 lines=5 words=25 bytes=110",
    ]
    assert (work / "raw" / "gen-2.txt").read_text().splitlines()[1] == "record 2 of gen-2"
    assert (work / "processed" / "gen-2.txt").read_text().splitlines()[1] == "  2 RECORD 2 OF GEN-2"

    summary = work / "summary.json"

    def summarized() -> dict[str, int] | None:
        value = json.loads(summary.read_text()) if summary.exists() else None
        return value if value and value["items"] == 3 else None

    totals = wait_until(summarized, 8, "the analyzer's summary after 2 quiet seconds")
    assert totals == {"items": 3, "lines": 9, "words": 45, "bytes": 198}
    wait_machine(procs["analyzer"], "analyzer", "idle")
    for proc in procs.values():
        assert stop_process(proc) == 0


def test_custom_actions(
    run_machine: Callable[..., Popen],
    cli: Callable[..., Any],
    store: Store,
    workdir: Path,
    wait_machine: Callable[..., Any],
    wait_until: Callable[..., Any],
) -> None:
    worker = run_machine(EXAMPLES / "custom_actions" / "text_stats.yaml")
    wait_machine(worker, "text_stats", "waiting")
    text = "the cat and the hat\nthe end"
    cli("add-job", "t1", "--type", "text_stats", "--data", json.dumps({"text": text}))
    cli("add-job", "t2", "--type", "text_stats", "--data", '{"text": 42}', "--max-attempts", "1")

    def settled() -> bool:
        counts = store.count_jobs(job_type="text_stats")
        return counts.get("completed") == 1 and counts.get("failed") == 1

    wait_until(settled, 5, "one job completed and one failed")
    stats = {"lines": 2, "words": 7, "chars": 27, "top_word": "the"}
    job = store.get_job("t1")
    assert job is not None and job.result == stats
    lines = (workdir / "data" / "custom_actions" / "stats.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [{"job_id": "t1", "stats": stats}]
    failed = store.get_job("t2")
    assert failed is not None and "must be a string" in (failed.error_message or "")
    assert stop_process(worker) == 0
