"""The released package's examples, unchanged from its sdist, run as real machine processes
and do what their READMEs say (issue 15, item 2)."""

from __future__ import annotations

import json

from statemachine_engine.database import Store

from .conftest import Released, in_state, path_of, wait_until


def test_simple_worker_processes_queued_jobs(sdist: Released, db: Store) -> None:
    example = sdist.example("simple_worker")
    sdist.start(example / "config/worker.yaml", "simple_worker", cwd=example)
    wait_until(lambda: in_state(db, "simple_worker", "waiting"), "worker waiting")
    for job in ("j1", "j2"):
        sdist.cli("add-job", job, "--type", "task", "--machine-type", "simple_worker")
    for job in ("j1", "j2"):
        wait_until(lambda job=job: db.get_job(job).status == "completed", f"{job} completed")  # type: ignore[union-attr]
    wait_until(lambda: in_state(db, "simple_worker", "waiting"), "worker back to waiting")
    steps = path_of(db, "simple_worker")
    assert ("initializing", "waiting", "initialized") in steps
    assert steps.count(("processing", "completed", "job_done")) == 2
    assert steps.count(("completed", "waiting", "continue_work")) == 2


def test_controller_worker_notifies_the_controller(sdist: Released, db: Store) -> None:
    example = sdist.example("controller_worker")
    sdist.start(example / "config/controller.yaml", "task_controller", cwd=example)
    sdist.start(example / "config/worker.yaml", "task_worker", cwd=example)
    wait_until(lambda: in_state(db, "task_worker", "waiting"), "worker waiting")
    sdist.cli("add-job", "t1", "--type", "task", "--machine-type", "task_worker")
    wait_until(lambda: db.get_job("t1").status == "completed", "t1 completed")  # type: ignore[union-attr]

    def delivered() -> bool:
        events = db.list_events(target="task_controller")
        return any(e.event_type == "task_completed" and e.status == "processed" for e in events)

    wait_until(delivered, "task_completed handled by the controller")
    (event,) = [e for e in db.list_events(target="task_controller")]
    assert event.payload == {"job_id": "t1", "machine": "task_worker"}
    assert ("monitoring", "monitoring", "task_completed") in path_of(db, "task_controller")
    assert ("notifying", "waiting", "notified") in path_of(db, "task_worker")


def test_timeout_demo_times_out_retries_and_finishes(sdist: Released, db: Store) -> None:
    example = sdist.example("timeout_demo")
    demo = sdist.start(example / "config/timeout_worker.yaml", "timeout_worker", cwd=example)
    retried = ("timed_out", "waiting", "retry")
    wait_until(lambda: retried in path_of(db, "timeout_worker"), "timeout(5) then retry")
    assert ("waiting", "timed_out", "timeout(5)") in path_of(db, "timeout_worker")
    sdist.cli("send-event", "--target", "timeout_worker", "--type", "start_work")
    wait_until(lambda: in_state(db, "timeout_worker", "processing"), "start_work handled")
    sdist.cli("send-event", "--target", "timeout_worker", "--type", "work_done")
    assert demo.proc.wait(timeout=60) == 0  # `completed` is final: cleanup runs, exit 0
    assert path_of(db, "timeout_worker")[-1] == ("processing", "completed", "work_done")


def test_custom_actions_loaded_the_released_way(sdist: Released, db: Store) -> None:
    example = sdist.example("custom_actions")
    worker = sdist.start(
        example / "config/worker.yaml", "custom_worker", "--actions-dir", "./actions", cwd=example
    )
    wait_until(lambda: in_state(db, "custom_worker", "waiting"), "worker waiting")
    send = ("send-event", "--target", "custom_worker", "--type")
    sdist.cli(*send, "greet", "--payload", json.dumps({"name": "Alice"}))
    wait_until(lambda: "Hello, Alice!" in worker.output(), "greeting logged")
    sdist.cli(*send, "calculate", "--payload", json.dumps({"a": 5, "b": 3}))
    wait_until(lambda: "Calculation: 5 + 3 = 8" in worker.output(), "calculation logged")
    wait_until(
        lambda: ("calculating", "waiting", "calculated") in path_of(db, "custom_worker"),
        "back to waiting after calculating",
    )
    assert ("greeting", "waiting", "greeted") in path_of(db, "custom_worker")
    sdist.cli(*send, "stop")
    assert worker.proc.wait(timeout=60) == 0
    assert "Worker shutting down" in worker.output()


def test_patient_records_batch_controller(sdist: Released, db: Store) -> None:
    """The controller claims every pending job by id, spawns one worker per job with
    `start_fsm` and `context_vars`, and waits for the batch; each worker ends its handed job
    with `complete_job` (run-demo.sh's flow, with the README's manual events instead of the
    30 s timers)."""
    jobs = ("job_001", "job_002")
    for number, job in enumerate(jobs, 1):
        data = {
            "report_id": f"report_{number}",
            "report_title": f"Patient Report {number}",
            "summary_text": f"Processing report {number}",
        }
        sdist.cli("add-job", job, "--type", "patient_records", "--payload", json.dumps(data))
    config = sdist.root / "examples/patient_records/config/concurrent-controller.yaml"
    controller = sdist.start(config, "concurrent_controller")
    for job in jobs:
        worker = f"patient_record_{job}"
        wait_until(lambda w=worker: in_state(db, w, "summarizing"), f"{worker} spawned")
        assert db.get_job(job).status == "processing"  # type: ignore[union-attr]
        sdist.cli("send-event", "--target", worker, "--type", "summary_complete")
        wait_until(lambda w=worker: in_state(db, w, "fact_checking"), f"{worker} checking")
        sdist.cli("send-event", "--target", worker, "--type", "validation_passed")
    for job in jobs:
        wait_until(lambda j=job: db.get_job(j).status == "completed", f"{job} completed")  # type: ignore[union-attr]
        worker = f"patient_record_{job}"
        wait_until(lambda w=worker: in_state(db, w, "shutdown"), f"{worker} shut down")
        assert path_of(db, worker)[-2:] == [
            ("fact_checking", "ready", "validation_passed"),
            ("ready", "shutdown", "stop"),
        ]
    wait_until(lambda: in_state(db, "concurrent_controller", "idling"), "controller idle")
    steps = path_of(db, "concurrent_controller")
    assert ("waiting_for_batch", "checking_queue", "all_jobs_complete") in steps
    assert steps.count(("spawning_batch", "spawning_batch", "worker_spawned")) == 2
    assert controller.proc.poll() is None
