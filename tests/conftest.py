"""Shared fixtures: a temporary store, a private runtime directory, in-process machines."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest

from statemachine_engine.clock import VirtualClock
from statemachine_engine.config.loader import parse_definition
from statemachine_engine.core import ActionLoader, StateMachineEngine
from statemachine_engine.database.sqlite import SQLiteStore
from statemachine_engine.transport.runtime_dir import ENV_RUNTIME_DIR

Until = Callable[..., Awaitable[None]]


async def until(predicate: Callable[[], object], timeout: float = 5.0) -> None:
    """Wait until `predicate()` is truthy, polling every millisecond; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.001)


@pytest.fixture(name="until")
def until_fixture() -> Until:
    return until


@pytest.fixture(autouse=True)
def runtime_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private runtime directory short enough for socket paths (107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="sm", dir="/tmp"))
    monkeypatch.setenv(ENV_RUNTIME_DIR, str(path))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    opened = SQLiteStore(str(tmp_path / "sm.db"))
    yield opened
    opened.close()


@dataclass
class Machine:
    """A machine running in-process: its engine, the task running it and its store."""

    engine: StateMachineEngine
    task: asyncio.Task[int]
    store: SQLiteStore
    clock: VirtualClock | None

    async def stop(self, timeout: float = 5.0) -> int:
        """Stop the machine and return its exit code."""
        self.engine.stop()
        return await asyncio.wait_for(asyncio.shield(self.task), timeout)


class StartMachine(Protocol):
    def __call__(
        self,
        text: str,
        name: str = ...,
        *,
        clock: VirtualClock | None = ...,
        loader: ActionLoader | None = ...,
        **options: Any,
    ) -> Awaitable[Machine]: ...


@pytest.fixture
async def machine(store: SQLiteStore) -> AsyncIterator[StartMachine]:
    """Start machines from YAML text on the test's store; all are stopped at teardown.

    With a VirtualClock the store uses it too, so leases, retries and timers share one
    time line. The safety re-check defaults to an hour: a missed wake-up fails the test.
    """
    started: list[Machine] = []

    async def start(
        text: str,
        name: str = "worker",
        *,
        clock: VirtualClock | None = None,
        loader: ActionLoader | None = None,
        **options: Any,
    ) -> Machine:
        loader = loader or ActionLoader()
        definition = parse_definition(text, f"{name}.yaml", loader)
        if clock is not None:
            store.clock = clock
        options.setdefault("safety_interval", 3600.0)
        engine = StateMachineEngine(
            definition, name, store=store, clock=clock, loader=loader, **options
        )
        task = asyncio.create_task(engine.run(), name=f"machine {name}")
        running = Machine(engine, task, store, clock)
        started.append(running)
        return running

    yield start
    for running in started:
        running.engine.stop()
    for running in started:
        if not running.task.done():
            await asyncio.wait({running.task}, timeout=5)
        if not running.task.done():
            running.task.cancel()
            await asyncio.wait({running.task}, timeout=5)


RELEASE = "1.0.91"
"""The released package whose examples and files the compatibility tests run."""


def _release_cache() -> Path:
    default = Path.home() / ".cache" / "statemachine-engine-tests"
    return Path(os.environ.get("STATEMACHINE_TEST_CACHE", default))


@pytest.fixture(scope="session")
def released() -> Path:
    """The unpacked sdist of the released package, fetched with pip at test time (once,
    then cached outside the repository; never committed)."""
    cache = _release_cache()
    unpacked = cache / f"statemachine_engine-{RELEASE}"
    if (unpacked / "examples").is_dir():
        return unpacked
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        fetched = subprocess.run(
            [
                str(Path(sys.executable).parent / "pip"),
                "download",
                f"statemachine-engine=={RELEASE}",
                "--no-deps",
                "--no-binary",
                ":all:",
                "-d",
                tmp,
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert fetched.returncode == 0, fetched.stderr[-2000:]
        (sdist,) = Path(tmp).glob("*.tar.gz")
        with tarfile.open(sdist) as archive:
            archive.extractall(tmp, filter="data")
        try:
            os.rename(Path(tmp) / unpacked.name, unpacked)
        except OSError:
            assert (unpacked / "examples").is_dir()  # another run unpacked it first
    return unpacked
