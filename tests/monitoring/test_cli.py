"""`statemachine-ui` command line: refusals exit 2 with one line; default bind is loopback."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from statemachine_engine.cli.ui import main

UI_BIN = Path(sys.executable).parent / "statemachine-ui"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--host", "0.0.0.0"], "needs --token"),
        (["--host", "192.168.1.10", "--token", "short"], "16-256 characters"),
        (["--port", "0"], "--port must be"),
        (["--port", "abc"], "invalid int value"),
        (["--bogus"], "unrecognized arguments"),
    ],
)
def test_refusals_exit_2_with_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_token_from_environment_allows_wide_bind(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STATEMACHINE_UI_TOKEN", "short")
    assert main(["--host", "0.0.0.0"]) == 2
    assert "16-256 characters" in capsys.readouterr().err


def test_busy_port_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["--port", str(port)]) == 2
    assert "already in use" in capsys.readouterr().err


def _listeners(port: int) -> set[str]:
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hexport = local.rsplit(":", 1)
            if state == "0A" and int(hexport, 16) == port:
                found.add(address)
    return found


def test_default_listener_is_loopback_only(tmp_path: Path, runtime_dir: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [str(UI_BIN), "--db", f"sqlite:///{tmp_path}/x.db", "--port", str(port)],
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).is_success:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
            assert proc.poll() is None and time.monotonic() < deadline
        assert _listeners(port) == {"0100007F"}
        assert (runtime_dir / "statemachine-ui.sock").exists()
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0  # a graceful SIGTERM shutdown is a clean exit
    assert not (runtime_dir / "statemachine-ui.sock").exists()
    assert f"serving http://127.0.0.1:{port}/" in err.decode()
