"""Throwaway PostgreSQL clusters and worker processes for the multi-host and restart tests.

A cluster lives in a private temporary directory owned by `postgres` (the server refuses to
run as root), listens on the addresses given (optionally inside a network namespace) and on
a Unix socket in that directory, which the test process uses from any namespace. The shared
system server is never touched.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from statemachine_engine.database import NewJob

BIN = Path(sys.executable).parent
PG_BIN = Path("/usr/lib/postgresql")

T = TypeVar("T")

WORKER = """
name: drain worker
initial_state: waiting
states: [waiting, processing]
transitions:
  - {from: waiting, to: processing, event: new_job}
  - {from: waiting, to: waiting, event: no_jobs}
  - {from: processing, to: waiting, event: job_done}
actions:
  waiting:
    - {type: check_database_queue, job_type: drain}
  processing:
    - {type: log, message: "job {job_id}", level: debug, success: job_done}
"""

# The same worker with a 20 ms action, so a restart reliably lands in the middle of jobs.
SLOW_WORKER = WORKER.replace(
    '{type: log, message: "job {job_id}", level: debug, success: job_done}',
    "{type: sleep, seconds: 0.02, success: job_done}",
)

PINGED = """
name: pinged
initial_state: idle
states: [idle, got]
transitions:
  - {from: idle, to: got, event: ping}
  - {from: got, to: idle, event: reset}
"""

SENDER = """
name: sender
initial_state: sending
states: [sending, done]
transitions:
  - {from: sending, to: done, event: sent}
actions:
  sending:
    - {type: send_event, target_machine: "{target}", event_type: ping, success: sent}
"""


@dataclass
class Hosts:
    """Two namespaces joined by a veth pair: names and addresses."""

    a: str
    b: str
    addr_a: str
    addr_b: str


def pg_bindir() -> Path:
    """The newest installed PostgreSQL's bin directory; fails loudly when there is none."""
    versions = sorted(
        (p for p in PG_BIN.glob("*/bin") if (p / "initdb").exists()),
        key=lambda p: int(p.parent.name),
    )
    if not versions:
        raise AssertionError("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    return versions[-1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Callable[[], T], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:g} s")
        time.sleep(0.05)


def run(argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(argv), capture_output=True, text=True, check=False, **kwargs)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()}")
    return done


class Cluster:
    """A private cluster: `start()`, `restart()`, `stop()`, `url(schema)` for clients."""

    def __init__(
        self,
        listen: str = "127.0.0.1",
        port: int | None = None,
        netns: str | None = None,
        *,
        durable: bool = True,
    ) -> None:
        self.durable = durable
        if os.geteuid() != 0:
            raise AssertionError("private PostgreSQL clusters need root (to run as postgres)")
        self.bindir = pg_bindir()
        self.listen = listen
        self.port = port or free_port()
        self.netns = netns
        self.base = Path(tempfile.mkdtemp(prefix="smpg-", dir="/tmp"))
        self.data = self.base / "data"
        self.log = self.base / "server.log"
        user = pwd.getpwnam("postgres")
        os.chown(self.base, user.pw_uid, user.pw_gid)
        self.base.chmod(0o755)
        self._as_postgres(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
            ]
        )
        with (self.data / "pg_hba.conf").open("a") as hba:
            hba.write("host all all 10.0.0.0/8 trust\n")

    def _as_postgres(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
        return run([*prefix, "runuser", "-u", "postgres", "--", *argv], cwd=self.base)

    def _pg_ctl(self, *args: str) -> None:
        options = (
            f"-c listen_addresses={self.listen} -p {self.port} -k {self.base}"
            " -c max_connections=200"
            f" -c synchronous_commit={'on' if self.durable else 'off'}"
        )
        self._as_postgres(
            [
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-w",
                "-t",
                "30",
                "-o",
                options,
                *args,
            ]
        )

    def start(self) -> None:
        self._pg_ctl("start")

    def restart(self, mode: str = "immediate") -> None:
        self._pg_ctl("restart", "-m", mode)

    def stop(self) -> None:
        with contextlib.suppress(AssertionError):
            self._pg_ctl("stop", "-m", "immediate")

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def local_url(self, schema: str) -> str:
        """A URL over the cluster's Unix socket (usable from any network namespace)."""
        return f"postgresql://postgres@/postgres?host={self.base}&port={self.port}&schema={schema}"

    def tcp_url(self, schema: str, host: str | None = None) -> str:
        return f"postgresql://postgres@{host or self.listen}:{self.port}/postgres?schema={schema}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class Processes:
    """Machine processes started by a test, each in its own session; all stopped at close."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[tuple[subprocess.Popen[str], Path]] = []

    def machine(
        self,
        text: str,
        name: str,
        db_url: str,
        *,
        netns: str | None = None,
        runtime_dir: Path | None = None,
        safety_interval: float = 3600.0,
        extra_env: dict[str, str] | None = None,
        initial_context: str | None = None,
    ) -> subprocess.Popen[str]:
        config = self.workdir / f"{name}.yaml"
        config.write_text(text)
        runtime = runtime_dir or self.workdir / "run"
        runtime.mkdir(mode=0o700, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("STATEMACHINE_")}
        env.update(extra_env or {})
        env["STATEMACHINE_RUNTIME_DIR"] = str(runtime)
        argv = [
            str(BIN / "statemachine"),
            str(config),
            "--machine-name",
            name,
            "--db",
            db_url,
            "--safety-interval",
            str(safety_interval),
            "--log-level",
            "INFO",
        ]
        if initial_context is not None:
            argv += ["--initial-context", initial_context]
        if netns is not None:
            argv = ["ip", "netns", "exec", netns, *argv]
        log = self.workdir / f"{name}.log"
        with log.open("w") as handle:
            proc = subprocess.Popen(
                argv,
                cwd=self.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
        self.started.append((proc, log))
        return proc

    def log_texts(self) -> list[str]:
        return [log.read_text(errors="replace") for _, log in self.started]

    def logs(self) -> str:
        return "\n".join(
            f"--- {log.name} (exit {proc.poll()}) ---\n{log.read_text(errors='replace')[-4000:]}"
            for proc, log in self.started
        )

    def close(self) -> None:
        for proc, _ in self.started:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        for proc, _ in self.started:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@contextlib.contextmanager
def processes(workdir: Path) -> Iterator[Processes]:
    procs = Processes(workdir)
    try:
        yield procs
    except BaseException:
        print(procs.logs())
        raise
    finally:
        procs.close()


def bulk_add(store: Any, count: int, job_type: str = "drain") -> None:
    """Enqueue `count` jobs `job-NNNN` in one transaction, announced once."""
    store.add_jobs(NewJob(job_type, {"n": n}, job_id=f"job-{n:04d}") for n in range(count))


def exactly_once_report(rows: Callable[[str], list[dict[str, Any]]], total: int) -> dict[str, Any]:
    """Checks on a drained queue: every job completed, attempt 1, one `job_done` step each."""
    return {
        "completed": rows("SELECT count(*) AS n FROM jobs WHERE status = 'completed'")[0]["n"],
        "not_completed": rows("SELECT count(*) AS n FROM jobs WHERE status <> 'completed'")[0]["n"],
        "retried": rows("SELECT count(*) AS n FROM jobs WHERE attempts <> 1")[0]["n"],
        "done_steps": rows("SELECT count(*) AS n FROM transitions WHERE event = 'job_done'")[0][
            "n"
        ],
        "jobs_with_done_steps": rows(
            "SELECT count(DISTINCT job_id) AS n FROM transitions WHERE event = 'job_done'"
        )[0]["n"],
        "completions_streamed": rows(
            "SELECT count(*) AS n FROM realtime_events"
            " WHERE kind = 'job' AND payload LIKE '%\"status\":\"completed\"%'"
        )[0]["n"],
        "expected": total,
    }
