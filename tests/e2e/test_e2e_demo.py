"""`make demo` runs examples/pipeline/demo.py: it must work on a fresh directory and fail
clearly when the pipeline cannot finish in time."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from statemachine_engine.database import open_store

pytestmark = pytest.mark.timeout(60)

DEMO = Path(__file__).resolve().parents[2] / "examples" / "pipeline" / "demo.py"


def live_processes(base: Path) -> dict[int, str]:
    """Live processes (pid: command line) working in `base`: the demo and its machines."""
    found: dict[int, str] = {}
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if Path(os.readlink(proc / "cwd")) != base.resolve():
                continue
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if cmdline and int(proc.name) != os.getpid():
            found[int(proc.name)] = cmdline.replace(b"\0", b" ").decode(errors="replace")
    return found


def run_demo(
    base: Path, env: dict[str, str], *args: str, timeout: float = 45
) -> subprocess.CompletedProcess[str]:
    """Run demo.py; if it hangs, kill it and the machines it started (by pid)."""
    try:
        return subprocess.run(
            [sys.executable, str(DEMO), "--base-dir", str(base), *args],
            cwd=base,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        for pid in live_processes(base):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        raise


def test_demo_runs_the_pipeline(tmp_path: Path, e2e_env: dict[str, str]) -> None:
    stale = tmp_path / "data" / "demo" / "pipeline"
    stale.mkdir(parents=True)
    (stale / "report.txt").write_text("left over from an earlier run\n")

    done = run_demo(tmp_path, e2e_env, "--jobs", "6")

    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "Removed the previous demo data" in out
    assert "queued 6/6  generated 6/6  processed 6/6  analyzed 6/6" in out
    assert "exit codes: generator 0, processor 0, analyzer 0" in out
    assert "list-jobs" in out and "history" in out
    work = tmp_path / "data" / "demo" / "pipeline"
    assert len((work / "report.txt").read_text().splitlines()) == 6
    assert json.loads((work / "summary.json").read_text())["items"] == 6
    store = open_store("sqlite:///" + str(tmp_path / "data" / "demo" / "statemachine.db"))
    try:
        assert store.count_jobs(job_type="generate")["completed"] == 6
        statuses = {m.machine_name: m.status for m in store.list_machines()}
        assert statuses == {n: "stopped" for n in ("generator", "processor", "analyzer")}
    finally:
        store.close()
    assert live_processes(tmp_path) == {}


def test_demo_reports_a_missed_deadline_and_stops_machines(
    tmp_path: Path, e2e_env: dict[str, str]
) -> None:
    done = run_demo(tmp_path, e2e_env, "--jobs", "3", "--timeout", "1")

    assert done.returncode == 1, done.stdout + done.stderr
    errors = done.stderr.splitlines()
    assert errors[0].startswith("demo: error:") and "within 1 s" in errors[0], done.stderr
    assert live_processes(tmp_path) == {}
