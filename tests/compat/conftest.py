"""Fixtures for running the released package's examples, unchanged, as real `statemachine`
processes on a SQLite file: a copy of the fetched sdist as the working directory, a private
runtime directory, and helpers to start machines, call `statemachine-cli` and wait."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pytest

from statemachine_engine.database import Store, open_store
from statemachine_engine.transport.runtime_dir import ENV_RUNTIME_DIR

BIN = Path(sys.executable).parent
#: Generous: CI runs these on a busy 2-core machine.
DEADLINE = 60.0

T = TypeVar("T")


def wait_until(condition: Callable[[], T], what: str, timeout: float = DEADLINE) -> T:
    """Poll `condition` until it returns something truthy; fail naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:g} s")
        time.sleep(0.02)


@dataclass
class Released:
    """A copy of the released sdist (cwd of every process) and one database."""

    root: Path
    db_url: str
    env: dict[str, str]
    logs: Path
    procs: list[tuple[subprocess.Popen[str], Path]] = field(default_factory=list)

    def example(self, name: str) -> Path:
        return self.root / "examples" / name

    def start(self, config: Path, name: str, *extra: str, cwd: Path | None = None) -> Machine:
        """`statemachine CONFIG --machine-name NAME` as a real process."""
        log = self.logs / f"{name}.log"
        argv = [str(BIN / "statemachine"), str(config), "--machine-name", name, *extra]
        with log.open("w") as handle:
            proc = subprocess.Popen(
                [*argv, "--db", self.db_url],
                cwd=cwd or self.root,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                text=True,
            )
        self.procs.append((proc, log))
        return Machine(proc, log)

    def cli(self, *args: str) -> str:
        """`statemachine-db ARGS` (the released name); fails the test on a non-zero exit."""
        done = subprocess.run(
            [str(BIN / "statemachine-db"), "--db", self.db_url, *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, (args, done.stderr)
        return done.stdout


@dataclass
class Machine:
    proc: subprocess.Popen[str]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def sdist(released: Path, tmp_path: Path) -> Iterator[Released]:
    """The released examples, copied unchanged; every process started is stopped after."""
    root = tmp_path / "release"
    shutil.copytree(released / "examples", root / "examples")
    runtime = Path(tempfile.mkdtemp(prefix="compat-ex-", dir="/tmp"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("STATEMACHINE_")}
    env[ENV_RUNTIME_DIR] = str(runtime)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    logs = tmp_path / "logs"
    logs.mkdir()
    made = Released(root, "sqlite:///" + str(tmp_path / "compat.db"), env, logs)
    yield made
    for proc, log in made.procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        print(f"--- {log.name} (exit {proc.returncode}) ---\n{log.read_text(errors='replace')}")
    shutil.rmtree(runtime, ignore_errors=True)


@pytest.fixture
def db(sdist: Released) -> Iterator[Store]:
    opened = open_store(sdist.db_url)
    yield opened
    opened.close()


def path_of(store: Store, machine: str) -> list[tuple[str | None, str, str | None]]:
    """The machine's transitions so far, oldest first: (from, to, event)."""
    rows = sorted(store.history(machine=machine, limit=1000), key=lambda r: r.step)
    return [(r.from_state, r.to_state, r.event) for r in rows]


def in_state(store: Store, machine: str, state: str) -> bool:
    status = store.get_machine(machine)
    return status is not None and status.current_state == state
