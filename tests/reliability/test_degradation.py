"""Graceful degradation: a full disk stops a worker with one line naming the database and
leaves it intact; a read-only database or an uncreatable directory is refused at start
with exit 2; SIGTERM mid-bash kills the command's group, releases the job and cleans up.
Catalogue items 7, 8, 14 and 15."""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from statemachine_engine.database.sqlite import SQLiteStore

PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2


def limit_file_size(limit: int) -> Callable[[], None]:
    """preexec_fn: files may not grow past `limit` bytes; SIGXFSZ ignored, so a write
    past it fails with EFBIG, as on a full disk."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def without_root_file_powers() -> None:
    """preexec_fn: drop the capabilities that let root ignore file modes (the tests run as
    root, and `nobody` cannot reach the interpreter under /root)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            os._exit(99)


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="smro-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    for sub in path.rglob("*"):
        if sub.is_dir():
            sub.chmod(0o755)
    subprocess.run(["rm", "-rf", str(path)], check=False)


@pytest.mark.timeout(60)
def test_disk_full_stops_the_worker_cleanly_then_drains_after(
    procs: Any, db: SQLiteStore, db_path: Path, kit: Any
) -> None:
    config = procs.config("worker", kit.worker_yaml("echo {job_id} >> done.txt"))
    for n in range(300):
        db.add_job("task", {"pad": "p" * 500, "n": n}, job_id=f"j{n:03d}")
    db.conn.rows("PRAGMA wal_checkpoint(TRUNCATE)")
    limit = db_path.stat().st_size + 200 * 1024
    worker = procs.machine(config, "worker", preexec_fn=limit_file_size(limit))
    code = worker.wait(timeout=40)
    log = procs.log(worker)
    assert code == 1, log[-3000:]
    assert "Traceback" not in log
    errors = [line for line in log.splitlines() if " ERROR " in line and "stopping" in line]
    assert len(errors) == 1 and str(db_path) in errors[0], log[-3000:]
    assert kit.integrity_ok(db_path)
    counts = db.count_jobs()
    print(f"disk full after {counts['completed']} jobs: {errors[0]}")
    assert 0 < counts["completed"] < 300
    assert counts["processing"] <= 1, "at most the job in hand, under its (expiring) lease"
    for job in db.list_jobs(status="pending", limit=300):
        assert job.attempts == 0 and job.lease_owner is None, job
    for job in db.list_jobs(status="processing", limit=300):
        assert job.lease_owner is not None and job.lease_expires_at is not None
    status = db.get_machine("worker")
    assert status is not None and (status.status != "running" or status.pid == worker.pid)

    procs.machine(config, "worker")  # limit lifted; a held job is retaken after its lease
    kit.wait_until(lambda: db.count_jobs()["completed"] == 300, 30, "the queue drained")
    assert kit.integrity_ok(db_path)
    done = (procs.workdir / "done.txt").read_text().split()
    assert set(done) == {f"j{n:03d}" for n in range(300)}


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


@pytest.mark.timeout(30)
def test_read_only_database_and_missing_directory_exit_2(
    shared_dir: Path, env: dict[str, str], kit: Any
) -> None:
    config = shared_dir / "worker.yaml"
    config.write_text(kit.worker_yaml("true"))
    db_file = shared_dir / "ro.db"
    SQLiteStore(str(db_file)).close()
    for leftover in (Path(f"{db_file}-wal"), Path(f"{db_file}-shm")):
        leftover.unlink(missing_ok=True)
    db_file.chmod(0o444)
    shared_dir.chmod(0o555)

    def run(url: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [kit.STATEMACHINE, str(config), "--machine-name", "w", "--db", url],
            env=env,
            cwd=shared_dir,
            capture_output=True,
            text=True,
            timeout=20,
            preexec_fn=without_root_file_powers,
        )

    started = time.monotonic()
    line = one_error_line(run(f"sqlite:///{db_file}"))
    assert "read-only" in line and str(db_file) in line, line
    line = one_error_line(run(f"sqlite:///{shared_dir}/missing/sub/x.db"))
    assert "cannot create" in line and "missing" in line, line
    line = one_error_line(run(f"sqlite:///{shared_dir}/new.db"))
    assert "cannot create" in line or "read-only" in line, line
    assert time.monotonic() - started < 15
    assert stat.S_IMODE(db_file.stat().st_mode) == 0o444


@pytest.mark.timeout(30)
def test_sigterm_mid_bash_kills_the_group_and_releases_the_job(
    procs: Any, db: SQLiteStore, runtime_dir: Path, kit: Any
) -> None:
    command = "echo $$ > bash.pid; sleep 60 & sleep 60"
    config = procs.config("worker", kit.worker_yaml(command))
    db.add_job("task", job_id="long")
    worker = procs.machine(config, "worker")
    pid_file = procs.workdir / "bash.pid"
    kit.wait_until(lambda: pid_file.exists() and pid_file.read_text().strip(), 10, "bash runs")
    group = int(pid_file.read_text())
    assert (runtime_dir / "worker.sock").exists()

    worker.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    kit.wait_until(lambda: not kit.group_alive(group), 2, "the command's group killed")
    assert kit.zombies_of(worker.pid) == [] or worker.poll() is not None
    assert worker.wait(timeout=5) == 0
    assert time.monotonic() - sent < 5
    job = db.get_job("long")
    assert job is not None and (job.status, job.attempts, job.lease_owner) == ("pending", 0, None)
    status = db.get_machine("worker")
    assert status is not None and status.status == "stopped"
    assert not (runtime_dir / "worker.sock").exists()
    assert not (runtime_dir / "worker.lock").exists()
    assert "Traceback" not in procs.log(worker)
