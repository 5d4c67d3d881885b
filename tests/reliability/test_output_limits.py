"""RELIABILITY-TESTS #24, huge and endless command output: a `bash` action printing 50 MB and
another running `yes` forever under `timeout: 2`. Pass: no deadlock on a full pipe (the
released package's defect), the captured output is cut to the cap with a marker, the
endless command's process group is killed at the timeout, the worker stays small and alive."""

from __future__ import annotations

import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

from statemachine_engine.database.sqlite import SQLiteStore

CAP = 1024 * 1024
MARKER = "\n[output truncated]"


def worker(tag: str) -> str:
    command = (
        "case {job_id} in"
        " big) head -c 52428800 /dev/zero | tr '\\\\0' x ;;"
        f" endless) yes {tag} ;;"
        " esac"
    )
    return textwrap.dedent(
        f"""
        name: output worker
        initial_state: waiting
        states: [waiting, processing, saving]
        events: [new_job, no_jobs, printed, saved, error]
        transitions:
          - from: waiting
            to: processing
            event: new_job
            actions:
              - type: check_database_queue
                params: {{job_type: task}}
          - {{from: waiting, to: waiting, event: no_jobs}}
          - from: processing
            to: saving
            event: printed
            actions:
              - type: bash
                params:
                  command: "{command}"
                  timeout: 2
                  success: printed
          - from: saving
            to: waiting
            event: saved
            actions:
              - type: bash
                params: {{command: "cat > {{job_id}}.captured", stdin: "{{output}}",
                          success: saved}}
          - {{from: processing, to: waiting, event: error}}
          - {{from: saving, to: waiting, event: error}}
        """
    ).lstrip()


def processes_with(tag: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if tag.encode() in cmdline:
                found.append(int(entry.name))
    return found


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


@pytest.mark.timeout(90)
def test_huge_and_endless_output(kit: Any, procs: Any, db: SQLiteStore, workdir: Path) -> None:
    tag = f"sm-endless-{uuid.uuid4().hex[:8]}"
    config = procs.config("worker", worker(tag))
    db.add_job("task", job_id="big", max_attempts=1)
    db.add_job("task", job_id="endless", max_attempts=1)
    proc = procs.machine(config, "out")

    def settled() -> bool:
        return all(
            (job := db.get_job(j)) is not None and job.status in {"completed", "failed"}
            for j in ("big", "endless")
        )

    kit.wait_until(settled, 60, "both jobs settled")
    big, endless = db.get_job("big"), db.get_job("endless")
    assert big is not None and big.status == "completed", big
    captured = (workdir / "big.captured").read_text()
    assert captured.endswith(MARKER), captured[-80:]
    assert CAP - 100 <= len(captured) - len(MARKER) <= CAP, len(captured)
    assert set(captured[: -len(MARKER)].strip()) == {"x"}
    assert endless is not None and endless.status == "failed", endless
    assert "timed out" in (endless.error_message or "") or "timeout" in (
        endless.error_message or ""
    ), endless.error_message
    kit.wait_until(lambda: not processes_with(tag), 10, "the endless command's group killed")
    assert proc.poll() is None, procs.log(proc)
    assert peak_rss_mib(proc.pid) < 250
