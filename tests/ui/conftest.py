"""Browser fixtures: a real `statemachine-ui` process and Debian's headless Chromium."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from pytest_asyncio import is_async_test

from statemachine_engine.database.sqlite import SQLiteStore

from ..conftest import StartMachine, machines_on

CHROMIUM = os.environ.get("STATEMACHINE_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"
UI_BIN = Path(sys.executable).parent / "statemachine-ui"


def wait_for(predicate: Any, what: str, timeout: float = 20.0) -> Any:
    """Poll `predicate` until it returns something truthy (returned); fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        found = predicate()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class UiServer:
    """A `statemachine-ui` process on a free loopback port."""

    def __init__(self, db_file: Path, *extra: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        log = db_file.parent / "statemachine-ui.log"
        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            [str(UI_BIN), "--db", f"sqlite:///{db_file}", "--port", str(self.port), *extra],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60  # a busy CI host can take long to start Python
        while True:
            try:
                if httpx.get(f"{self.url}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"statemachine-ui did not start; see {log}")
            time.sleep(0.05)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


@pytest.fixture
def ui_server(store: object, tmp_path: Path) -> Iterator[UiServer]:
    """The UI on the same SQLite file as the `store` fixture (tmp_path / sm.db)."""
    server = UiServer(tmp_path / "sm.db")
    yield server
    server.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The browser tests share one event loop per test worker, the one the worker's Chromium
    runs on: a launch costs about a second, and more on a busy host."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents and is_async_test(item):
            item.add_marker(pytest.mark.asyncio(loop_scope="session"), append=False)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def chromium() -> AsyncIterator[Any]:
    """Playwright, started once per test worker (`browser` launches Chromium on it)."""
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run `make install` (installs Debian chromium)")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        yield pw


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def _browser(chromium: Any) -> AsyncIterator[list[Any]]:
    """The test worker's one Chromium, closed when the worker ends."""
    held: list[Any] = []  # the running browser, replaced if a test leaves it disconnected
    yield held
    for instance in held:
        await instance.close()


@pytest_asyncio.fixture(loop_scope="session")
async def browser(chromium: Any, _browser: list[Any]) -> AsyncIterator[Any]:
    """The worker's Chromium; each test's pages (each in its own context, so no cookies,
    storage or emulated media carry over) are closed after it."""
    if not _browser or not _browser[0].is_connected():
        _browser[:] = [await chromium.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)]
    instance = _browser[0]
    try:
        yield instance
    finally:
        for context in list(instance.contexts):
            await context.close()


@pytest_asyncio.fixture(loop_scope="session")
async def machine(store: SQLiteStore) -> AsyncIterator[StartMachine]:
    """The shared `machine` fixture, on the browser tests' loop (its machines run there)."""
    async with machines_on(store) as start:
        yield start


@pytest.fixture
def shot() -> object:
    """`shot(name)`: the path of a screenshot in test-artifacts/ui/."""

    def path(name: str) -> str:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        return str(ARTIFACTS / f"{name}.png")

    return path
