"""Fixtures for fault tests: real `statemachine` processes, each in its own process group so a
test can SIGKILL/SIGSTOP a worker together with its bash children, on a SQLite file in
tmp_path. Defaults follow the catalogue: lease 2 s, heartbeat 0.5 s, safety re-check 1 s,
backoff base 0.1 s."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from statemachine_engine.database.sqlite import SQLiteStore

BIN = Path(sys.executable).parent
STATEMACHINE = str(BIN / "statemachine")
CLI = str(BIN / "statemachine-cli")
DEFAULTS: tuple[str, ...] = ("--lease", "2", "--heartbeat", "0.5", "--safety-interval", "1")
DEFAULTS += ("--backoff-base", "0.1")

T = TypeVar("T")
Popen = subprocess.Popen[str]


def wait_until(condition: Callable[[], T], timeout: float = 10.0, what: str = "condition") -> T:
    """Poll `condition` every 10 ms until truthy (returned); fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:g} s")
        time.sleep(0.01)


def group_alive(pgid: int) -> bool:
    """True while any process of the group exists (zombies included)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def zombies_of(pid: int) -> list[int]:
    """Zombie children of `pid` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] == "Z" and int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def worker_yaml(
    command: str,
    *,
    job_type: str = "task",
    bash_timeout: float = 60,
    options: str = "",
    sink: str | None = None,
) -> str:
    """A worker: claim a `job_type` job, run `command` in bash, then (with `sink`) send a
    `done` event for the job to the machine `sink`, and go back for the next job. An error
    fails the attempt and goes back to waiting."""
    report = (
        f"""
  - from: reporting
    to: waiting
    event: reported
    actions:
      - type: send_event
        params: {{target_machine: {sink}, event_type: done, payload: {{job: "{{job_id}}"}},
                  success: reported}}
"""
        if sink
        else ""
    )
    after = "reporting" if sink else "waiting"
    return (
        textwrap.dedent(
            f"""
            name: reliability worker
            initial_state: waiting
            states: [waiting, processing, reporting]
            events: [new_job, no_jobs, job_done, reported, error]
            {options}
            transitions:
              - from: waiting
                to: processing
                event: new_job
                actions:
                  - type: check_database_queue
                    params: {{job_type: {job_type}}}
              - {{from: waiting, to: waiting, event: no_jobs}}
              - from: processing
                to: {after}
                event: job_done
                actions:
                  - type: bash
                    params:
                      command: {command!r}
                      timeout: {bash_timeout}
                      success: job_done
              - {{from: processing, to: waiting, event: error}}
              - {{from: reporting, to: waiting, event: error}}
            """
        ).lstrip()
        + report
    )


class Processes:
    """Starts machines and CLI commands in `workdir`; every machine gets its own process
    group (so a test can signal it with its children) and is killed at teardown."""

    def __init__(self, workdir: Path, db_url: str, env: dict[str, str], logs: Path) -> None:
        self.workdir = workdir
        self.db_url = db_url
        self.env = env
        self.logs = logs
        self.started: list[tuple[Popen, Path]] = []
        self.cli_path = CLI

    def config(self, name: str, text: str) -> Path:
        path = self.workdir / f"{name}.yaml"
        path.write_text(text)
        return path

    def machine(
        self,
        config: Path,
        name: str,
        *extra: str,
        defaults: tuple[str, ...] = DEFAULTS,
        env: dict[str, str] | None = None,
        **popen: Any,
    ) -> Popen:
        argv = [STATEMACHINE, str(config), "--machine-name", name, "--db", self.db_url]
        argv += [*defaults, *extra]
        log = self.logs / f"{name}-{len(self.started)}.log"
        with log.open("w") as handle:
            proc = subprocess.Popen(
                argv,
                cwd=self.workdir,
                env=env or self.env,
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
                **popen,
            )
        self.started.append((proc, log))
        return proc

    def log(self, proc: Popen) -> str:
        for started, path in self.started:
            if started is proc:
                return path.read_text(errors="replace")
        raise KeyError(proc.pid)

    def cli(
        self, *args: str, timeout: float = 20.0, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CLI, "--db", self.db_url, *args],
            cwd=self.workdir,
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def close(self) -> None:
        for proc, _ in self.started:  # all at once: hundreds of machines stop in parallel
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc, log in self.started:
            if proc.poll() is None:
                try:
                    proc.wait(timeout=5)
                except (subprocess.TimeoutExpired, ProcessLookupError, PermissionError):
                    proc.kill()
                    proc.wait()
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            print(f"--- {log.name} (exit {proc.returncode}) ---")
            print(log.read_text(errors="replace")[-4000:])


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "sm.db"


@pytest.fixture
def db(db_path: Path) -> Iterator[SQLiteStore]:
    """The test's database, opened in-process (the schema exists before any worker starts)."""
    opened = SQLiteStore(str(db_path))
    yield opened
    opened.close()


@pytest.fixture
def env(runtime_dir: Path) -> dict[str, str]:
    """Environment of started processes: the test's runtime dir, the venv's scripts first."""
    found = {k: v for k, v in os.environ.items() if not k.startswith("STATEMACHINE_")}
    found["STATEMACHINE_RUNTIME_DIR"] = str(runtime_dir)
    found["PATH"] = f"{BIN}{os.pathsep}{found.get('PATH', '')}"
    return found


@pytest.fixture
def procs(workdir: Path, db_path: Path, env: dict[str, str], tmp_path: Path) -> Iterator[Processes]:
    logs = tmp_path / "logs"
    logs.mkdir()
    running = Processes(workdir, "sqlite:///" + str(db_path), env, logs)
    yield running
    running.close()


def integrity_ok(path: Path) -> bool:
    """PRAGMA integrity_check on a fresh connection."""
    import apsw

    conn = apsw.Connection(str(path))
    try:
        rows = list(conn.execute("PRAGMA integrity_check"))
    finally:
        conn.close()
    return rows == [("ok",)]


def sql(path: Path, query: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run one read query on a fresh connection (a second reader, like the UI)."""
    import apsw

    conn = apsw.Connection(str(path))
    conn.set_busy_timeout(30_000)
    try:
        return list(conn.execute(query, args))
    finally:
        conn.close()


class Kit:
    """The helpers above for test modules (importlib mode cannot import conftest)."""

    wait_until = staticmethod(wait_until)
    group_alive = staticmethod(group_alive)
    zombies_of = staticmethod(zombies_of)
    worker_yaml = staticmethod(worker_yaml)
    integrity_ok = staticmethod(integrity_ok)
    sql = staticmethod(sql)
    STATEMACHINE = STATEMACHINE
    CLI = CLI
    DEFAULTS = DEFAULTS


@pytest.fixture
def kit() -> type[Kit]:
    return Kit
