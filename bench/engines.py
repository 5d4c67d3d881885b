"""Drivers for the two engines under test: ours (this checkout) and the released package.

Both drivers start machines as real processes with the engine's own `statemachine` console
script (from the right virtual environment), each run in a fresh working directory with its
own database, and expose the same small interface to the scenarios:

- `start(config, name, context)` / `wait_ready(machine)` / `stop(machines)`
- `enqueue(job_type, count)`: returns the wall time at which the jobs were committed
- `send_events(targets, event)`: what `send-event --target A --target B ...` does
- `completed(job_type)`: how many jobs of that type are completed
- `new_transitions()`: transitions recorded since the last call, with the engine's own
  wall-clock timestamp (`time.time()` in the machine process, so comparable across engines)

Where the timestamps come from:
- ours: the `transitions` table (`created_at`, a float) and `machine_state.started_at`;
- released: its real-time event stream. Each released machine sends `state_change` and
  `machine_registered` datagrams (with a `time.time()` timestamp) to the Unix socket named by
  `--event-socket-path`, normally read by its UI; the harness binds that socket and records
  them. Its database timestamps are `CURRENT_TIMESTAMP` (one-second resolution), unusable here.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RELEASED_VERSION = "1.0.91"
RELEASED_CONTROL_PREFIX = "/tmp/statemachine-control"  # hard-coded in its send_event / CLI


class BenchError(RuntimeError):
    """A scenario could not be run; the message goes into the table."""


@dataclass
class Machine:
    name: str
    proc: subprocess.Popen[bytes]
    spawn_at: float
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def check_alive(self) -> None:
        code = self.proc.poll()
        if code is not None:
            tail = ""
            with contextlib.suppress(OSError):
                tail = self.log_path.read_text(errors="replace")[-600:]
            raise BenchError(f"machine {self.name} exited with code {code}: {tail.strip()}")


@dataclass(frozen=True)
class Transition:
    at: float
    machine: str
    from_state: str | None
    to_state: str
    event: str | None


@dataclass
class Engine:
    """Common part: working directory, process bookkeeping, stopping."""

    workdir: Path
    label: str = "engine"
    machines: list[Machine] = field(default_factory=list)
    #: Appended to every machine's command line (e.g. `--safety-interval 60`).
    extra_args: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        (self.workdir / "logs").mkdir(parents=True, exist_ok=True)

    # -- to implement -------------------------------------------------------------------
    def argv(self, config: Path, name: str, context: dict[str, Any] | None) -> list[str]:
        raise NotImplementedError

    def ready_at(self, machine: Machine) -> float | None:
        raise NotImplementedError

    def enqueue(self, job_type: str, count: int = 1) -> float:
        raise NotImplementedError

    def send_events(self, targets: list[str], event: str) -> float:
        raise NotImplementedError

    def completed(self, job_type: str) -> int:
        raise NotImplementedError

    def new_transitions(self) -> list[Transition]:
        raise NotImplementedError

    def close(self) -> None:
        self.stop(list(self.machines))

    # -- shared -------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        return dict(os.environ)

    def start(self, config: Path, name: str, context: dict[str, Any] | None = None) -> Machine:
        log_path = self.workdir / "logs" / f"{name}.log"
        with open(log_path, "wb") as log:
            spawn_at = time.time()
            proc = subprocess.Popen(
                self.argv(config, name, context),
                cwd=self.workdir,
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        machine = Machine(name, proc, spawn_at, log_path)
        self.machines.append(machine)
        return machine

    def wait_ready(self, machine: Machine, timeout: float = 60.0) -> float:
        """Wait until the machine has entered its initial state; return the engine's timestamp."""
        deadline = time.monotonic() + timeout
        while True:
            at = self.ready_at(machine)
            if at is not None:
                return at
            machine.check_alive()
            if time.monotonic() > deadline:
                raise BenchError(f"machine {machine.name} not ready after {timeout:.0f} s")
            time.sleep(0.005)

    def stop(self, machines: list[Machine]) -> None:
        for m in machines:
            if m.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    m.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for m in machines:
            try:
                m.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    m.proc.kill()
                m.proc.wait(timeout=5)
            if m in self.machines:
                self.machines.remove(m)
            self.after_stop(m)

    def after_stop(self, machine: Machine) -> None:
        pass


class Ours(Engine):
    """This checkout, run with the main venv's `statemachine` script and a SQLite file."""

    def __init__(self, workdir: Path, bindir: Path) -> None:
        super().__init__(workdir, "ours")
        from statemachine_engine.database import open_store

        self.bindir = bindir
        self.url = f"sqlite:///{workdir}/ours.db"
        self.store = open_store(self.url)
        self._last_transition_id = 0
        # A read-only connection for polling the history cheaply (`Store.history` has no
        # "after id" filter and would re-read thousands of rows on every poll).
        import apsw

        self._reader = apsw.Connection(str(workdir / "ours.db"), flags=apsw.SQLITE_OPEN_READONLY)
        self._reader.set_busy_timeout(30_000)

    def argv(self, config: Path, name: str, context: dict[str, Any] | None) -> list[str]:
        argv = [str(self.bindir / "statemachine"), str(config), "--machine-name", name]
        argv += ["--db", self.url]  # default log level (INFO lines per step), as released
        if context:
            argv += ["--initial-context", json.dumps(context)]
        return argv + self.extra_args

    def ready_at(self, machine: Machine) -> float | None:
        status = self.store.get_machine(machine.name)
        if status is None or status.pid != machine.pid or status.status != "running":
            return None
        return status.started_at

    def enqueue(self, job_type: str, count: int = 1) -> float:
        from statemachine_engine.transport import ring_all

        base = time.monotonic_ns()
        for i in range(count):
            self.store.add_job(job_type, {"i": i}, job_id=f"{job_type}-{base}-{i}")
        committed = time.time()
        ring_all({"kind": "job", "job_type": job_type})
        return committed

    def send_events(self, targets: list[str], event: str) -> float:
        from statemachine_engine.database.records import OutgoingEvent
        from statemachine_engine.transport import ring

        started = time.time()
        self.store.send_events([OutgoingEvent(target, event) for target in targets])
        for target in targets:
            ring(target, {"kind": "event"})
        return started

    def completed(self, job_type: str) -> int:
        return self.store.count_jobs(job_type=job_type).get("completed", 0)

    def new_transitions(self) -> list[Transition]:
        rows = list(
            self._reader.execute(
                "SELECT id, created_at, machine_name, from_state, to_state, event"
                " FROM transitions WHERE id > ? ORDER BY id",
                (self._last_transition_id,),
            )
        )
        if rows:
            self._last_transition_id = rows[-1][0]
        return [Transition(r[1], r[2], r[3], r[4], r[5]) for r in rows]

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._reader.close()
            self.store.close()


class _EventSink:
    """Binds the released package's real-time event socket and records what arrives."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        self.sock.settimeout(0.2)
        self.lock = threading.Lock()
        self.transitions: list[Transition] = []
        self.registered: dict[str, float] = {}
        self._stop = False
        self.thread = threading.Thread(target=self._run, name="event-sink", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                msg = json.loads(data)
                self.record(msg.get("type"), msg.get("machine_name"), msg.get("payload") or {})
            except (ValueError, KeyError, TypeError, AttributeError):
                continue

    def record(self, kind: str, name: str, payload: dict[str, Any]) -> None:
        if kind == "state_change":
            t = Transition(
                float(payload["timestamp"]),
                name,
                payload.get("from_state"),
                payload["to_state"],
                payload.get("event_trigger"),
            )
            with self.lock:
                self.transitions.append(t)
        elif kind == "machine_registered":
            with self.lock:
                self.registered[name] = float(payload["timestamp"])

    def close(self) -> None:
        self._stop = True
        self.thread.join(timeout=2)
        self.sock.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


class Released(Engine):
    """statemachine-engine==1.0.91 from PyPI, run from bench/.venv-released.

    Its database is `data/pipeline.db` under the working directory (no option or variable
    changes it). Its control sockets are `/tmp/statemachine-control-<name>.sock` (its
    `send_event` action and CLI hard-code that prefix), so machine names are made unique.
    """

    def __init__(self, workdir: Path, bindir: Path) -> None:
        super().__init__(workdir, "released")
        self.bindir = bindir
        self.db_path = workdir / "data" / "pipeline.db"
        self.sink = _EventSink(workdir / "ev.sock")
        self._cursor = 0
        # Let the released package create its own schema, as its CLI would.
        subprocess.run(
            [
                str(bindir / "python"),
                "-c",
                "from statemachine_engine.database.models import get_database; get_database()",
            ],
            cwd=workdir,
            check=True,
            capture_output=True,
        )
        # apsw, not the stdlib sqlite3 module: this process also holds our Store, and two
        # SQLite libraries in one process break each other's POSIX locks (docs/reliability.md).
        import apsw

        self.db = apsw.Connection(str(self.db_path))
        self.db.set_busy_timeout(30_000)
        self._db_cursor = 0
        self._db_polled = 0.0

    def argv(self, config: Path, name: str, context: dict[str, Any] | None) -> list[str]:
        argv = [str(self.bindir / "statemachine"), str(config), "--machine-name", name]
        argv += ["--event-socket-path", str(self.sink.path)]
        if context:
            argv += ["--initial-context", json.dumps(context)]
        return argv + self.extra_args

    def ready_at(self, machine: Machine) -> float | None:
        self._poll_fallback()
        with self.sink.lock:
            return self.sink.registered.get(machine.name)

    def _poll_fallback(self) -> None:
        """Read the events a machine could not send to the event socket.

        A Unix datagram socket queues only `net.unix.max_dgram_qlen` (often 10) datagrams;
        when 200 machines emit at once the rest get EAGAIN, and the released engine then
        writes the event to its `realtime_events` table instead. Polled every 100 ms."""
        now = time.monotonic()
        if now - self._db_polled < 0.1:
            return
        self._db_polled = now
        rows = self.db.execute(
            "SELECT id, machine_name, event_type, payload FROM realtime_events"
            " WHERE id > ? AND event_type IN ('state_change', 'machine_registered') ORDER BY id",
            (self._db_cursor,),
        ).fetchall()  # autocommit: the read transaction ends here, writers are not held up
        for row_id, name, kind, text in rows:
            self._db_cursor = int(str(row_id))
            with contextlib.suppress(ValueError, KeyError, TypeError):
                self.sink.record(str(kind), str(name), json.loads(str(text)))

    def enqueue(self, job_type: str, count: int = 1) -> float:
        # The same row its `statemachine-db add-job` / JobModel.create_job writes; one
        # transaction for the batch. It has no wake-up: workers find jobs by polling.
        base = time.monotonic_ns()
        rows = [(f"{job_type}-{base}-{i}", job_type, json.dumps({"i": i})) for i in range(count)]
        with self.db:
            self.db.executemany(
                "INSERT INTO jobs (job_id, job_type, data, status) VALUES (?, ?, ?, 'pending')",
                rows,
            )
        return time.time()

    def send_events(self, targets: list[str], event: str) -> float:
        # What its `send_event` action does: one datagram to the target's control socket.
        # (Its CLI also writes a machine_events row that no built-in action reads.)
        started = time.time()
        data = json.dumps({"type": event, "payload": {}}).encode()
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            for target in targets:
                with contextlib.suppress(OSError):
                    sock.sendto(data, f"{RELEASED_CONTROL_PREFIX}-{target}.sock")
        return started

    def completed(self, job_type: str) -> int:
        row = self.db.execute(
            "SELECT count(*) FROM jobs WHERE job_type = ? AND status = 'completed'", (job_type,)
        ).fetchone()
        return int(str(row[0])) if row is not None else 0

    def new_transitions(self) -> list[Transition]:
        self._poll_fallback()
        with self.sink.lock:
            fresh = self.sink.transitions[self._cursor :]
            self._cursor = len(self.sink.transitions)
        return fresh

    def after_stop(self, machine: Machine) -> None:
        # It has no SIGTERM handler: the control socket file stays behind.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{RELEASED_CONTROL_PREFIX}-{machine.name}.sock")

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.sink.close()
            self.db.close()
