"""A new user's first day, on the built wheel in a clean venv outside the repository:
`statemachine init demo`, `cd demo`, `statemachine up system.yaml`; a job goes from the
controller to the worker and back by events, and the UI in Chromium draws the diagram."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# Builds from the source tree: these run one after another on one test worker.
pytestmark = pytest.mark.xdist_group("source-tree")

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("STATEMACHINE_TEST_CHROMIUM", "/usr/bin/chromium")
CONTROLLER_STATES = ("waiting", "dispatching", "awaiting_report", "recording", "stopped")
UI_PORTS = range(18300, 18400)
#: The README's and the quickstart's first job and what it prints.
TEXT = "hello from the first day"
RESULT = "batch-1: 5 words, by batch_worker"


@pytest.mark.parametrize("doc", ["README.md", "docs/quickstart.md"])
def test_the_docs_show_this_first_day(doc: str) -> None:
    text = (ROOT / doc).read_text()
    for line in (
        "$ statemachine init demo",
        "$ cd demo",
        "$ statemachine up system.yaml",
        f'$ statemachine-cli add-job batch-1 --type batch --data \'{{"text": "{TEXT}"}}\'',
        RESULT,
    ):
        assert line in text, (doc, line)


def ui_port() -> int:
    """A free port in the range the test machines reserve for UI servers."""
    for port in UI_PORTS:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError(f"no free port in {UI_PORTS}")


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60) -> Any:
    """Poll `check` until it returns something truthy; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.fixture
def user_env(venv: Path) -> Iterator[dict[str, str]]:
    """A shell as a user would have it: the venv's bin first, no project settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STATEMACHINE_")}
    for key in ("PYTHONPATH", "VIRTUAL_ENV"):
        env.pop(key, None)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    runtime = tempfile.mkdtemp(prefix="firstday-")  # short: socket paths are limited
    env["STATEMACHINE_RUNTIME_DIR"] = runtime
    yield env
    with contextlib.suppress(OSError):
        for leftover in Path(runtime).iterdir():
            leftover.unlink()
        os.rmdir(runtime)


@pytest.mark.timeout(240)
def test_init_up_and_the_ui_from_the_wheel(
    venv: Path, user_env: dict[str, str], tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    assert not home.resolve().is_relative_to(ROOT)

    def cli(*args: str, cwd: Path) -> str:
        result = subprocess.run(
            [str(venv / "bin" / args[0]), *args[1:]],
            cwd=cwd,
            env=user_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result.stdout

    out = cli("statemachine", "init", "demo", cwd=home)
    assert "cd demo" in out and "statemachine up system.yaml" in out
    demo = home / "demo"
    port = ui_port()
    log = (tmp_path / "up.log").open("w")
    up = subprocess.Popen(
        [str(venv / "bin/statemachine"), "up", "system.yaml", "--ui-port", str(port)],
        cwd=demo,
        env=user_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _first_job_and_page(up, demo, port, tmp_path, cli)
    finally:
        up.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            code = up.wait(timeout=60)
        except subprocess.TimeoutExpired:
            up.kill()
            raise
        finally:
            log.close()
    output = (tmp_path / "up.log").read_text()
    assert code == 0, output
    assert "all machines stopped" in output


def _first_job_and_page(
    up: subprocess.Popen[bytes], demo: Path, port: int, tmp_path: Path, cli: Any
) -> None:
    base = f"http://127.0.0.1:{port}"

    def ui_answers() -> bool:
        assert up.poll() is None, (tmp_path / "up.log").read_text()
        try:
            with urllib.request.urlopen(f"{base}/api/health", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    wait_for("the UI", ui_answers)
    data = json.dumps({"text": TEXT})
    cli("statemachine-cli", "add-job", "batch-1", "--type", "batch", "--data", data, cwd=demo)

    def completed() -> bool:
        shown = cli("statemachine-cli", "show-job", "batch-1", "--json", cwd=demo)
        status = json.loads(shown)["status"]
        assert status in ("pending", "processing", "completed"), shown
        return bool(status == "completed")

    wait_for("batch-1 to complete", completed)
    results = demo / "data" / "controller_worker" / "results.log"
    assert results.read_text() == RESULT + "\n"

    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(base + "/")
            for name in ("controller", "batch_worker"):
                page.locator(f'#machines tr[data-name="{name}"]').wait_for(timeout=30_000)
            page.locator('#machines tr[data-name="controller"]').click()
            svg = page.locator('#diagram[data-machine="controller"] svg')
            svg.wait_for(timeout=30_000)
            drawn = page.locator("#diagram svg g.node").all_text_contents()
            for state in CONTROLLER_STATES:
                assert any(state in text for text in drawn), (state, drawn)
            page.locator('#diagram[data-current="waiting"] svg g.node.sm-current').wait_for(
                timeout=30_000
            )
            page.screenshot(path=str(tmp_path / "first-day.png"), full_page=True)
            assert errors == []
        finally:
            browser.close()
    assert (tmp_path / "first-day.png").stat().st_size > 10_000
