"""End-to-end fixtures: real `statemachine` processes on a SQLite file in tmp_path.

Each test gets a private working directory (the processes' cwd), a database file, a short
private runtime directory for the control sockets, and factories that start machines and
run `statemachine-cli`. Every process a test starts is stopped at teardown.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from statemachine_engine.database import MachineStatus, Store, open_store

BIN = Path(sys.executable).parent
STOP_GRACE = 5.0

T = TypeVar("T")
RunMachine = Callable[..., "subprocess.Popen[str]"]
Cli = Callable[..., "subprocess.CompletedProcess[str]"]
WaitUntil = Callable[..., Any]


def wait_until(condition: Callable[[], T], timeout: float = 5.0, what: str = "condition") -> T:
    """Poll `condition` until it returns something truthy (and return that); fail after
    `timeout` seconds with a message naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:g} s")
        time.sleep(0.01)


def stop_process(proc: subprocess.Popen[str], grace: float = STOP_GRACE) -> int:
    """SIGTERM, then SIGKILL after `grace` seconds; returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """The working directory of every process the test starts."""
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def runtime_dir() -> Iterator[Path]:
    """A short private directory for control sockets (tmp_path can be too long for them)."""
    path = Path(tempfile.mkdtemp(prefix="sme2e-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return "sqlite:///" + str(tmp_path / "e2e.db")


@pytest.fixture
def e2e_env(runtime_dir: Path) -> dict[str, str]:
    """The environment of started processes: our runtime dir, the venv's scripts first."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STATEMACHINE_")}
    env["STATEMACHINE_RUNTIME_DIR"] = str(runtime_dir)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """The test's database, opened in-process for assertions."""
    opened = open_store(db_url)
    yield opened
    opened.close()


@pytest.fixture
def run_machine(
    workdir: Path, tmp_path: Path, db_url: str, e2e_env: dict[str, str]
) -> Iterator[RunMachine]:
    """Start `statemachine CONFIG` as a real process; logs go to tmp_path/logs/.

    `run_machine(config, name=None, db_url=None, *extra_args, safety_interval=None,
    initial_context=None)`; the name defaults to the file's metadata.machine_name and the
    database to the test's.
    """
    test_db_url = db_url
    started: list[tuple[subprocess.Popen[str], Path]] = []
    logs = tmp_path / "logs"
    logs.mkdir()

    def start(
        config: str | Path,
        name: str | None = None,
        db_url: str | None = None,
        *extra: str,
        safety_interval: float | None = None,
        initial_context: str | None = None,
    ) -> subprocess.Popen[str]:
        argv = [str(BIN / "statemachine"), str(config), "--db", db_url or test_db_url]
        if name is not None:
            argv += ["--machine-name", name]
        if safety_interval is not None:
            argv += ["--safety-interval", str(safety_interval)]
        if initial_context is not None:
            argv += ["--initial-context", initial_context]
        argv += list(extra)
        log = logs / f"{name or Path(config).stem}-{len(started)}.log"
        with log.open("w") as handle:
            proc = subprocess.Popen(
                argv,
                cwd=workdir,
                env=e2e_env,
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                text=True,
            )
        started.append((proc, log))
        return proc

    yield start
    for proc, log in started:
        code = stop_process(proc)
        print(f"--- {log.name} (exit {code}) ---\n{log.read_text(errors='replace')}")


@pytest.fixture
def cli(workdir: Path, db_url: str, e2e_env: dict[str, str]) -> Cli:
    """Run `statemachine-cli --db <test db> ARGS...`; fails the test on a non-zero exit
    unless `check=False`."""

    def run(
        *args: str, check: bool = True, timeout: float = 15.0
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(BIN / "statemachine-cli"), "--db", db_url, *args],
            cwd=workdir,
            env=e2e_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"statemachine-cli {' '.join(args)} exited {done.returncode}: {done.stderr}"
            )
        return done

    return run


@pytest.fixture
def wait_machine(store: Store) -> Callable[..., MachineStatus]:
    """`wait_machine(proc, name, state=None, timeout=10.0)`: wait until the process has
    registered as running (in `state`, if given); fails at once if the process exits."""

    def wait(
        proc: subprocess.Popen[str], name: str, state: str | None = None, timeout: float = 10.0
    ) -> MachineStatus:
        def ready() -> MachineStatus | None:
            if proc.poll() is not None:
                raise AssertionError(f"machine {name} exited early with code {proc.returncode}")
            status = store.get_machine(name)
            if status is None or status.pid != proc.pid or status.status != "running":
                return None
            return status if state is None or status.current_state == state else None

        found = wait_until(ready, timeout, f"machine {name} running in state {state or 'any'}")
        assert found is not None
        return found

    return wait


@pytest.fixture(name="wait_until")
def wait_until_fixture() -> WaitUntil:
    """`wait_until(condition, timeout=5.0, what=...)` as a fixture."""
    return wait_until
