"""The release artifacts: build the wheel and sdist, check them, install the wheel into a
fresh venv outside the repository and run the quickstart there."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
import tomllib
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Builds from the source tree: these run one after another on one test worker.
pytestmark = pytest.mark.xdist_group("source-tree")

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SCRIPTS = sorted(PYPROJECT["project"]["scripts"])
MERMAID = "src/statemachine_engine/monitoring/static/vendor/mermaid.min.js"

WORKER = """\
name: Packaged Worker
initial_state: waiting
metadata: {machine_name: w, job_type: task}
states: [waiting, processing, stopped]
events: [new_job, no_jobs, job_done, error, stop]
transitions:
  - {from: waiting, to: processing, event: new_job}
  - {from: waiting, to: waiting, event: no_jobs}
  - {from: processing, to: waiting, event: job_done}
  - {from: processing, to: waiting, event: error}
  - {from: "*", to: stopped, event: stop}
actions:
  waiting:
    - type: check_database_queue
      job_type: task
  processing:
    - type: bash
      command: "echo processing {job_id} for {data.name}"
      success: job_done
"""


def _version() -> str:
    source = (ROOT / "src/statemachine_engine/__init__.py").read_text()
    for line in source.splitlines():
        if line.startswith("__version__"):
            return line.split("=", 1)[1].strip().strip("\"'")
    raise AssertionError("no __version__ in statemachine_engine/__init__.py")


def test_dists_pass_twine_check(dists: dict[str, Path]) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "twine",
            "check",
            "--strict",
            str(dists["wheel"]),
            str(dists["sdist"]),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_wheel_contains_data_files(dists: dict[str, Path]) -> None:
    names = set(zipfile.ZipFile(dists["wheel"]).namelist())
    pkg = "statemachine_engine/"
    for required in (
        "database/schema/sqlite/001_core.sql",
        "database/schema/postgres/001_core.sql",
        "config/schema.json",
        "monitoring/static/index.html",
        "monitoring/static/app.js",
        "monitoring/static/style.css",
        "monitoring/static/vendor/mermaid.min.js",
        "py.typed",
    ):
        assert pkg + required in names, required
    # Every schema and static file in the source tree made it into the wheel.
    src = ROOT / "src/statemachine_engine"
    for sub in ("database/schema", "monitoring/static"):
        for path in (src / sub).rglob("*"):
            if path.is_file() and not path.name.startswith("."):
                assert pkg + path.relative_to(src).as_posix() in names, path
    # The examples ship inside the package, for `statemachine init`.
    for path in (ROOT / "examples").rglob("*"):
        rel = path.relative_to(ROOT)
        if path.is_file() and not {"__pycache__", "data"} & set(rel.parts):
            assert pkg + rel.as_posix() in names, path
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(dists["wheel"]).read(entry_points).decode()
    for script in SCRIPTS:
        assert f"{script} =" in text, script


def test_build_without_mermaid_fails_loudly(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    skipped = shutil.ignore_patterns(
        ".git",
        ".venv*",
        ".*cache",
        ".hypothesis",
        "build",
        "dist",
        "data",
        "site",
        "node_modules",
        "*.egg-info",
        "mermaid.min.js",
    )
    shutil.copytree(ROOT, tree, ignore=skipped)
    assert not (tree / MERMAID).exists()
    for kind in ("--wheel", "--sdist"):
        result = subprocess.run(
            [sys.executable, "-m", "build", kind, "--outdir", str(tmp_path / "out"), str(tree)],
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert result.returncode != 0, kind
        assert f"error: {MERMAID} is missing" in result.stdout + result.stderr, kind
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_postgres_is_an_extra(dists: dict[str, Path]) -> None:
    names = zipfile.ZipFile(dists["wheel"]).namelist()
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(dists["wheel"]).read(metadata).decode()
    requires = [line for line in text.splitlines() if line.startswith("Requires-Dist:")]
    psycopg = [line for line in requires if "psycopg" in line]
    assert psycopg and all('extra == "postgres"' in line for line in psycopg), psycopg
    assert "Provides-Extra: postgres" in text


def test_sdist_contains_sources(dists: dict[str, Path]) -> None:
    with tarfile.open(dists["sdist"]) as tar:
        names = tar.getnames()
    assert any(
        n.endswith("src/statemachine_engine/monitoring/static/vendor/mermaid.min.js") for n in names
    )
    assert any(n.endswith("pyproject.toml") for n in names)
    assert any(n.endswith("examples/controller_worker/system.yaml") for n in names)


def test_version_in_one_place(venv: Path) -> None:
    assert PYPROJECT["project"]["dynamic"] == ["version"]
    out = subprocess.run(
        [
            str(venv / "bin/python"),
            "-c",
            "import statemachine_engine; print(statemachine_engine.__version__)",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd="/",
    ).stdout.strip()
    assert out == _version()


def test_console_scripts_installed(venv: Path) -> None:
    for script in SCRIPTS:
        exe = venv / "bin" / script
        assert exe.is_file() and os.access(exe, os.X_OK), script
        result = subprocess.run([str(exe), "--help"], capture_output=True, timeout=60, cwd="/")
        assert result.returncode == 0, (script, result.stderr)
        result = subprocess.run(
            [str(exe), "--version"], capture_output=True, text=True, timeout=60, cwd="/"
        )
        assert result.stdout == f"statemachine-engine {_version()}\n", (script, result.stderr)


def test_plain_install_has_no_psycopg(venv: Path) -> None:
    # `pip install statemachine-engine` is SQLite only; the quickstart below runs without it.
    probe = "import importlib.util as u; print(u.find_spec('psycopg'))"
    found = subprocess.run(
        [str(venv / "bin/python"), "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd="/",
    ).stdout.strip()
    assert found == "None"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_quickstart_in_clean_venv(
    venv: Path, tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    assert not work.resolve().is_relative_to(ROOT)
    (work / "worker.yaml").write_text(WORKER)
    env = {k: v for k, v in os.environ.items() if not k.startswith("STATEMACHINE_")}
    env.pop("PYTHONPATH", None)
    env["STATEMACHINE_RUNTIME_DIR"] = os.environ["STATEMACHINE_RUNTIME_DIR"]  # this test's own
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["STATEMACHINE_DB"] = f"sqlite:///{work / 'data' / 'sm.db'}"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [shutil.which(args[0], path=str(venv / "bin")) or args[0], *args[1:]],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result

    run("statemachine-validate", "worker.yaml")
    worker = subprocess.Popen(
        [str(venv / "bin/statemachine"), "worker.yaml", "--machine-name", "w"],
        cwd=work,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    procs.append(worker)
    run("statemachine-cli", "add-job", "job-1", "--type", "task", "--payload", '{"name": "Ada"}')
    deadline = time.monotonic() + 30
    status = None
    while time.monotonic() < deadline:
        status = json.loads(run("statemachine-cli", "show-job", "job-1", "--json").stdout)
        if status.get("status") == "completed":
            break
        assert worker.poll() is None, worker.stderr.read() if worker.stderr else ""
        time.sleep(0.2)
    assert status is not None and status.get("status") == "completed", status
    assert "job-1" in run("statemachine-cli", "list-jobs").stdout

    port = _free_port()
    ui = subprocess.Popen(
        [str(venv / "bin/statemachine-ui"), "--port", str(port)],
        cwd=work,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    procs.append(ui)
    health: dict[str, object] = {}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2) as r:
                health = json.loads(r.read())
            break
        except OSError:
            assert ui.poll() is None, "statemachine-ui exited"
            time.sleep(0.2)
    assert health, "statemachine-ui did not answer"
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
        assert b"<html" in r.read().lower()
    with urllib.request.urlopen(
        f"http://127.0.0.1:{port}/static/vendor/mermaid.min.js", timeout=5
    ) as r:
        assert r.status == 200

    run("statemachine-cli", "send-event", "--target", "w", "--type", "stop")
    assert worker.wait(timeout=30) == 0
