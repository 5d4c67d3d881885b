"""Machine identity across real processes (DESIGN 13.8): a machine name runs once per database
whatever the runtime directory; a lease holder is declared dead only when its process is gone
(pid and start time); another host's row needs an operator's word; reset-processing keeps
its hands off live workers unless forced."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from statemachine_engine.database.liveness import process_start, this_host
from statemachine_engine.database.sqlite import SQLiteStore

# Records the bash pid, then holds the job until the test creates the file `go`.
HOLD = "mkdir -p markers; echo $$ >> markers/{job_id}; while [ ! -e go ]; do sleep 0.05; done"
LONG_LEASE = ("--lease", "60", "--heartbeat", "1", "--safety-interval", "1")


def started(workdir: Path, job_id: str) -> bool:
    return (workdir / "markers" / job_id).exists()


def job_status(db: SQLiteStore, job_id: str) -> tuple[str, int] | None:
    job = db.get_job(job_id)
    return None if job is None else (job.status, job.attempts)


@pytest.fixture
def other_runtime_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="sm2", dir="/tmp"))
    os.chmod(path, 0o700)
    yield path
    subprocess.run(["rm", "-rf", str(path)], check=False)


@pytest.mark.timeout(60)
def test_a_twin_with_another_runtime_dir_is_refused_and_the_job_keeps_its_worker(
    procs: Any,
    db: SQLiteStore,
    workdir: Path,
    env: dict[str, str],
    other_runtime_dir: Path,
    kit: Any,
) -> None:
    config = procs.config("worker", kit.worker_yaml(HOLD))
    db.add_job("task", job_id="j1")
    first = procs.machine(config, "w")
    kit.wait_until(lambda: started(workdir, "j1"), 15, "the first worker started j1")

    twin_env = {**env, "STATEMACHINE_RUNTIME_DIR": str(other_runtime_dir)}
    twin = procs.machine(config, "w", env=twin_env)
    assert twin.wait(timeout=20) == 2
    lines = [line for line in procs.log(twin).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "'w' is already running" in lines[0]
    assert f"pid {first.pid}" in lines[0] and this_host() in lines[0]

    row = db.get_machine("w")
    assert row is not None and (row.status, row.pid) == ("running", first.pid)
    assert row.pid_start == process_start(first.pid)
    assert job_status(db, "j1") == ("processing", 1)
    (workdir / "go").touch()
    kit.wait_until(lambda: job_status(db, "j1") == ("completed", 1), 15, "j1 completed")
    job = db.get_job("j1")
    assert job is not None and job.errors == () and job.error_message is None
    assert first.poll() is None
    assert "died" not in procs.log(first)


@pytest.mark.timeout(60)
def test_a_live_lease_holder_is_not_declared_dead_by_a_newcomer(
    procs: Any,
    db: SQLiteStore,
    workdir: Path,
    env: dict[str, str],
    other_runtime_dir: Path,
    kit: Any,
) -> None:
    # The row says stopped (an operator's mistake), yet the holder of j1 lives: the newcomer
    # starts, but must leave j1 to its live holder.
    config = procs.config("worker", kit.worker_yaml(HOLD))
    db.add_job("task", job_id="j1")
    first = procs.machine(config, "w", *LONG_LEASE, defaults=())
    kit.wait_until(lambda: started(workdir, "j1"), 15, "the first worker started j1")
    db.machine_stopped("w", "stopped", 1.0)
    twin_env = {**env, "STATEMACHINE_RUNTIME_DIR": str(other_runtime_dir)}
    second = procs.machine(config, "w", *LONG_LEASE, defaults=(), env=twin_env)
    kit.wait_until(lambda: "started in state" in procs.log(second), 15, "the newcomer started")
    assert job_status(db, "j1") == ("processing", 1)
    (workdir / "go").touch()
    kit.wait_until(lambda: job_status(db, "j1") == ("completed", 1), 15, "j1 completed")
    job = db.get_job("j1")
    assert job is not None and job.errors == ()
    assert "died" not in procs.log(second)
    assert first.poll() is None


@pytest.mark.timeout(60)
def test_a_reused_pid_does_not_pass_for_the_dead_holder(
    procs: Any, db: SQLiteStore, workdir: Path, kit: Any
) -> None:
    # The row and the lease name a pid that lives, but with another start time: the kernel
    # gave the dead worker's pid to an unrelated process. The job is recovered at once.
    with subprocess.Popen(["sleep", "60"]) as stranger:
        start = process_start(stranger.pid)
        assert start is not None
        db.register_machine(
            "w",
            "waiting",
            pid=stranger.pid,
            hostname=this_host(),
            pid_start=start + 1,
            config_path="worker.yaml",
            definition_name="w",
            definition_hash="old",
            definition_text="old",
            at=1.0,
        )
        db.add_job("task", job_id="j1")
        owner = f"w@{this_host()}:{stranger.pid}"
        assert db.claim_job("task", owner, lease_seconds=600) is not None
        config = procs.config("worker", kit.worker_yaml("true"))
        worker = procs.machine(config, "w")
        kit.wait_until(lambda: job_status(db, "j1") == ("completed", 2), 15, "j1 recovered")
        job = db.get_job("j1")
        assert job is not None and "died while running the job" in job.errors[0]
        assert worker.poll() is None
        stranger.kill()


@pytest.mark.timeout(60)
def test_a_name_running_on_another_host_needs_mark_stopped(
    procs: Any, db: SQLiteStore, kit: Any
) -> None:
    db.register_machine(
        "w",
        "waiting",
        pid=4242,
        hostname="gone.example",
        config_path="worker.yaml",
        definition_name="w",
        definition_hash="old",
        definition_text="old",
        at=1.0,
    )
    config = procs.config("worker", kit.worker_yaml("true"))
    refused = procs.machine(config, "w")
    assert refused.wait(timeout=20) == 2
    [line] = [x for x in procs.log(refused).splitlines() if x.strip()]
    assert "running on host gone.example (pid 4242)" in line and "mark-stopped w" in line
    row = db.get_machine("w")
    assert row is not None and (row.status, row.hostname) == ("running", "gone.example")

    result = procs.cli("mark-stopped", "w")
    assert result.returncode == 0, result.stderr
    assert "now recorded as stopped" in result.stdout
    worker = procs.machine(config, "w")
    kit.wait_until(lambda: (m := db.get_machine("w")) is not None and m.pid == worker.pid, 15)
    refused_again = procs.cli("mark-stopped", "w")
    assert refused_again.returncode == 2
    assert f"is running (pid {worker.pid} on this host)" in refused_again.stderr


@pytest.mark.timeout(60)
def test_reset_processing_spares_live_workers_unless_forced(
    procs: Any, db: SQLiteStore, workdir: Path, kit: Any
) -> None:
    config = procs.config("worker", kit.worker_yaml(HOLD))
    db.add_job("task", job_id="j1")
    live = procs.machine(config, "live", *LONG_LEASE, defaults=())
    kit.wait_until(lambda: started(workdir, "j1"), 15, "the live worker started j1")

    result = procs.cli("reset-processing")
    assert result.returncode == 0
    assert result.stdout == "released 0 processing job(s) back to pending\n"
    assert "job 'j1' left alone" in result.stderr and "--force" in result.stderr
    assert job_status(db, "j1") == ("processing", 1)

    result = procs.cli("reset-processing", "--force")
    assert result.returncode == 0
    assert "job 'j1' taken from live@" in result.stdout and "reset by operator" in result.stdout
    job = db.get_job("j1")
    assert job is not None and job.errors == ("reset by operator",)
    # The worker loses the lease, and the next run of j1 is attempt 2, never a second attempt 1.
    kit.wait_until(lambda: "lease lost" in procs.log(live), 15, "the worker saw the lost lease")
    kit.wait_until(lambda: (s := job_status(db, "j1")) is not None and s[1] == 2, 15)

    # A worker killed with a valid lease: its process is gone, so the job is released.
    os.killpg(live.pid, signal.SIGKILL)
    live.wait(timeout=5)
    held = db.get_job("j1")
    assert held is not None and held.status == "processing"
    result = procs.cli("reset-processing")
    assert result.returncode == 0 and result.stdout.startswith("released 1 ")
    assert job_status(db, "j1") == ("pending", 1)


def _remove_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


@pytest.mark.timeout(60)
def test_a_worker_whose_database_file_is_deleted_exits_1(
    procs: Any, db: SQLiteStore, db_path: Path, kit: Any
) -> None:
    config = procs.config("worker", kit.worker_yaml("true"))
    worker = procs.machine(config, "w")
    kit.wait_until(lambda: "started in state" in procs.log(worker), 15, "the worker started")
    _remove_database(db_path)
    assert worker.wait(timeout=15) == 1  # the 1 s safety re-check notices
    log = procs.log(worker)
    assert f"database {db_path} was deleted while in use" in log, log
    assert "Traceback" not in log
    assert not db_path.exists(), "the worker must not recreate the file"


@pytest.mark.timeout(60)
def test_a_replaced_database_stops_its_worker_and_add_job_says_it_created_one(
    procs: Any, db: SQLiteStore, db_path: Path, tmp_path: Path, kit: Any
) -> None:
    config = procs.config("worker", kit.worker_yaml("true"))
    worker = procs.machine(config, "w")
    kit.wait_until(lambda: "started in state" in procs.log(worker), 15, "the worker started")
    _remove_database(db_path)
    added = procs.cli("add-job", "J1", "--type", "task")
    assert added.returncode == 0, added.stderr
    assert added.stderr == f"created a new database at {db_path}\n"
    assert worker.wait(timeout=15) == 1  # woken by the doorbell, or the safety re-check
    log = procs.log(worker)
    assert f"database {db_path} was" in log and ("replaced" in log or "deleted" in log), log
    again = procs.cli("add-job", "J2", "--type", "task")
    assert (again.returncode, again.stderr) == (0, "")
    # A worker started on the new file runs the jobs that went there.
    fresh = procs.machine(config, "w")
    store = SQLiteStore(str(db_path))
    try:
        kit.wait_until(lambda: store.count_jobs().get("completed") == 2, 15, "jobs completed")
    finally:
        store.close()
    assert fresh.poll() is None


@pytest.fixture
def pg_url(tmp_path: Path) -> Iterator[str]:
    import hashlib

    from statemachine_engine.database.postgres import testing as pg_testing

    schema = "i_" + hashlib.md5(str(tmp_path).encode(), usedforsecurity=False).hexdigest()[:20]
    url = pg_testing.with_schema(pg_testing.check_server(), schema)
    yield url
    pg_testing.drop_schema(url)


@pytest.mark.timeout(90)
def test_a_twin_is_refused_on_postgresql_too(
    procs: Any,
    pg_url: str,
    workdir: Path,
    env: dict[str, str],
    other_runtime_dir: Path,
    kit: Any,
) -> None:
    from statemachine_engine.database.postgres import PostgresStore

    store = PostgresStore(pg_url)
    try:
        procs.db_url = pg_url
        config = procs.config("worker", kit.worker_yaml(HOLD))
        store.add_job("task", job_id="j1")
        first = procs.machine(config, "w")
        kit.wait_until(lambda: started(workdir, "j1"), 20, "the first worker started j1")
        twin_env = {**env, "STATEMACHINE_RUNTIME_DIR": str(other_runtime_dir)}
        twin = procs.machine(config, "w", env=twin_env)
        assert twin.wait(timeout=30) == 2
        [line] = [x for x in procs.log(twin).splitlines() if x.strip()]
        assert "'w' is already running" in line and f"pid {first.pid}" in line
        row = store.get_machine("w")
        assert row is not None and (row.status, row.pid) == ("running", first.pid)
        assert row.pid_start == process_start(first.pid)
        (workdir / "go").touch()

        def done() -> bool:
            job = store.get_job("j1")
            return job is not None and (job.status, job.attempts, job.errors) == (
                "completed",
                1,
                (),
            )

        kit.wait_until(done, 20, "j1 completed once by the first worker")
        assert first.poll() is None
    finally:
        store.close()
