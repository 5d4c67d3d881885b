"""Shared fixtures: a temporary store, a private runtime directory, in-process machines."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
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


@contextlib.asynccontextmanager
async def machines_on(store: SQLiteStore) -> AsyncIterator[StartMachine]:
    """Start machines from YAML text on `store`; all are stopped on leaving (the `machine`
    fixture, on whichever event loop its tests run).

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

    try:
        yield start
    finally:
        for running in started:
            running.engine.stop()
        for running in started:
            if not running.task.done():
                await asyncio.wait({running.task}, timeout=5)
            if not running.task.done():
                running.task.cancel()
                await asyncio.wait({running.task}, timeout=5)


@pytest.fixture
async def machine(store: SQLiteStore) -> AsyncIterator[StartMachine]:
    """Start machines from YAML text on the test's store; all are stopped at teardown."""
    async with machines_on(store) as start:
        yield start


def _released_helpers() -> ModuleType:
    """tests/released.py, loaded by path (the tests run with --import-mode=importlib)."""
    path = Path(__file__).resolve().parent / "released.py"
    spec = importlib.util.spec_from_file_location("_tests_released", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def released() -> Path:
    """The unpacked sdist of statemachine-engine 1.0.91, fetched with pip at test time (once,
    then cached outside the repository; never committed)."""
    path: Path = _released_helpers().released_sdist()
    return path


@pytest.fixture(scope="session")
def released_bin() -> Path:
    """The bin directory of a venv with statemachine-engine 1.0.91 installed."""
    path: Path = _released_helpers().released_bin()
    return path
