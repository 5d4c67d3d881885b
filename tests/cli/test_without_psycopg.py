"""psycopg is the optional `postgres` extra: every command works on SQLite without it, and a
PostgreSQL URL without it fails with one line and exit 2. The commands run as real
processes in which importing psycopg fails as if it were not installed (without_psycopg.py)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import statemachine_engine

HERE = Path(__file__).resolve().parent
WRAPPER = HERE / "without_psycopg.py"
PG_URL = "postgresql://nobody@127.0.0.1:1/nothing"
MISSING = "PostgreSQL support is not installed: pip install 'statemachine-engine[postgres]'"

WORKER = """\
name: W
initial_state: waiting
metadata: {machine_name: w}
states: [waiting, stopped]
events: [stop]
transitions:
  - {from: waiting, to: stopped, event: stop}
"""

ONE_SHOT = """\
name: D
initial_state: done
metadata: {machine_name: d}
states: [done]
actions:
  done:
    - type: log
      message: finished
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _without_psycopg(module: str, *argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(WRAPPER), f"statemachine_engine.cli.{module}", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "worker.yaml").write_text(WORKER)
    (tmp_path / "done.yaml").write_text(ONE_SHOT)
    (tmp_path / "system.yaml").write_text("machines:\n  - config: worker.yaml\n")
    return tmp_path


@pytest.mark.parametrize(
    ("prog", "module", "argv"),
    [
        ("statemachine-cli", "db", ["list", "--db", PG_URL]),
        ("statemachine", "run", ["worker.yaml", "--db", PG_URL]),
        ("statemachine up", "up", ["system.yaml", "--no-ui", "--db", PG_URL]),
        ("statemachine-ui", "ui", ["--port", "0", "--db", PG_URL]),
    ],
)
def test_postgres_url_without_psycopg_is_one_line(
    work: Path, prog: str, module: str, argv: list[str]
) -> None:
    if module == "ui":
        argv = ["--port", str(_free_port()), "--db", PG_URL]
    result = _without_psycopg(module, *argv, cwd=work)
    assert (result.returncode, result.stderr) == (2, f"{prog}: error: {MISSING}\n")


def test_sqlite_commands_run_without_psycopg(work: Path) -> None:
    db = f"sqlite:///{work / 'sm.db'}"
    steps = [
        ("validate", ["done.yaml"]),
        ("fsm", ["worker.yaml", "--out", str(work / "diagrams")]),
        ("db", ["add-job", "j1", "--type", "t", "--db", db]),
        ("db", ["list", "--db", db]),
        ("run", ["done.yaml", "--db", db]),
        ("db", ["machine-state", "--db", db]),
    ]
    for module, argv in steps:
        result = _without_psycopg(module, *argv, cwd=work)
        assert result.returncode == 0, (module, argv, result.stderr)
        if module == "run":
            assert "reached final state done" in result.stderr


def test_ui_on_sqlite_without_psycopg(work: Path) -> None:
    port = _free_port()
    db = f"sqlite:///{work / 'sm.db'}"
    argv = ["statemachine_engine.cli.ui", "--port", str(port), "--db", db]
    ui = subprocess.Popen(
        [sys.executable, str(WRAPPER), *argv],
        cwd=work,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        health: dict[str, object] = {}
        deadline = time.monotonic() + 30
        while not health and time.monotonic() < deadline:
            assert ui.poll() is None, ui.stderr.read() if ui.stderr else b""
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2) as r:
                    health = json.loads(r.read())
            except OSError:
                time.sleep(0.1)
        assert health.get("ok") is True, health
    finally:
        ui.terminate()
        ui.wait(timeout=10)


def test_version_imports_no_psycopg() -> None:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "statemachine_engine.cli.run", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"statemachine-engine {statemachine_engine.__version__}\n"
    assert "psycopg" not in result.stderr
