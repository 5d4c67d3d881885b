"""One driver per queue system under test, all with the same small interface.

A driver owns a fresh database (a `peers_` PostgreSQL database or a SQLite file in a
temporary directory), starts real worker processes, fills the queue with no-op jobs and
counts how many are done. `drain` in scenario.py and the enqueue measurements use only that.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

PEERS = Path(__file__).resolve().parent
BENCH = PEERS.parent
OUR_BIN = Path(sys.executable).parent
PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
PG_ADMIN = f"{PG_SERVER}/postgres"


class PeerError(RuntimeError):
    """A system could not be measured; the message goes into the report."""


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise PeerError(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(0.01)


def run_json(argv: list[str], env: dict[str, str], timeout: float = 300) -> dict[str, Any]:
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise PeerError(f"{Path(argv[1]).name} {argv[2]}: {out.stderr.strip()[-300:]}")
    lines = out.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else {}


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class System:
    """The common part: name, backend, worker bookkeeping."""

    name = "system"
    backend = "postgresql"
    fill_before_workers = False

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: list[subprocess.Popen[bytes]] = []

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("STATEMACHINE_")}
        env["PYTHONPATH"] = str(PEERS)
        return env

    def spawn(self, argv: list[str], env: dict[str, str], tag: str) -> None:
        log = open(self.workdir / f"{tag}.log", "wb")  # noqa: SIM115 - the child owns it
        self.procs.append(subprocess.Popen(argv, cwd=self.workdir, env=env, stdout=log, stderr=log))
        log.close()

    def check_alive(self) -> None:
        for proc in self.procs:
            if proc.poll() is not None:
                raise PeerError(f"{self.name} worker exited with code {proc.returncode}")

    def setup(self) -> None: ...
    def start_workers(self, count: int) -> None: ...
    def wait_ready(self, count: int) -> None: ...
    def fill(self, jobs: int) -> float | None:
        """Queue `jobs` no-op jobs in one call; the wall-clock time they were committed."""
        return None

    def completed(self, jobs: int) -> int:
        raise NotImplementedError

    def enqueue_single(self, count: int) -> float:
        """Jobs/s enqueuing one job per transaction."""
        raise NotImplementedError

    def enqueue_bulk(self, count: int, batch: int) -> float | None:
        """Jobs/s with the system's bulk enqueue, None if it has none."""
        return None

    def close(self) -> None:
        stop(self.procs)
        self.procs = []


class PgSystem(System):
    """A system on a fresh `peers_` database, dropped at close."""

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.dbname = f"peers_{uuid.uuid4().hex[:12]}"
        self.dsn = f"{PG_SERVER}/{self.dbname}"
        self.observer: psycopg.Connection[Any] | None = None

    def setup(self) -> None:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.dbname)))
        self.observer = psycopg.connect(self.dsn, autocommit=True)

    def scalar(self, query: str) -> int:
        assert self.observer is not None
        row = self.observer.execute(query).fetchone()  # type: ignore[call-overload]
        return int(row[0]) if row else 0

    def connections(self, listening: bool) -> int:
        """Other connections to this database that have run a statement (a LISTEN last)."""
        return self.scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND query <> ''"
            + (" AND query ILIKE 'LISTEN%'" if listening else "")
        )

    def close(self) -> None:
        super().close()
        if self.observer is not None:
            self.observer.close()
            self.observer = None
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(self.dbname)
                )
            )


class OursPg(PgSystem):
    name = "ours"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.url = f"{self.dsn}?schema=peers_ours"
        self.store: Any = None

    def setup(self) -> None:
        super().setup()
        from statemachine_engine.database import open_store

        (self.workdir / "run").mkdir(mode=0o700, exist_ok=True)
        os.environ["STATEMACHINE_RUNTIME_DIR"] = str(self.workdir / "run")
        self.store = open_store(self.url)

    def start_workers(self, count: int) -> None:
        import pg_bench

        self.procs = pg_bench.start_workers(self.workdir, self.url, count)

    def wait_ready(self, count: int) -> None:
        ours_ready(self, self.store, count)

    def fill(self, jobs: int) -> float | None:
        import pg_bench

        pg_bench.bulk_enqueue(self.store, jobs)
        return time.time()

    def completed(self, jobs: int) -> int:
        return int(self.store.count_jobs()["completed"])

    def enqueue_single(self, count: int) -> float:
        started = time.perf_counter()
        for _ in range(count):
            self.store.add_job("bench")
        return count / (time.perf_counter() - started)

    def enqueue_bulk(self, count: int, batch: int) -> float | None:
        return our_bulk(self.store, count, batch)

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None
        super().close()


def ours_ready(system: System, store: Any, count: int) -> None:
    def running() -> bool:
        system.check_alive()
        return sum(m.status == "running" for m in store.list_machines()) == count

    wait_for(running, 60, f"{count} of our workers running")


def our_bulk(store: Any, count: int, batch: int) -> float | None:
    """`Store.add_jobs(iterable of NewJob)` in batches when this checkout has it, else None
    (printed as "-")."""
    if not hasattr(store, "add_jobs"):
        return None
    from statemachine_engine import database

    new_job = database.NewJob  # type: ignore[attr-defined]
    started = time.perf_counter()
    for first in range(0, count, batch):
        store.add_jobs(new_job("bench") for _ in range(min(batch, count - first)))
    return count / (time.perf_counter() - started)


class Pgqueuer(PgSystem):
    name = "pgqueuer"

    def __init__(self, workdir: Path, bindir: Path) -> None:
        super().__init__(workdir)
        self.python = str(bindir / "python")
        self.runner = str(PEERS / "runner_pgqueuer.py")

    def setup(self) -> None:
        super().setup()
        run_json([self.python, self.runner, "setup", self.dsn], self.env())

    def start_workers(self, count: int) -> None:
        for n in range(count):
            self.spawn([self.python, self.runner, "worker", self.dsn], self.env(), f"pgq{n}")

    def wait_ready(self, count: int) -> None:
        def listening() -> bool:
            self.check_alive()
            return self.connections(listening=False) >= count

        wait_for(listening, 60, f"{count} pgqueuer workers connected")

    def fill(self, jobs: int) -> float | None:
        argv = [self.python, self.runner, "enqueue-bulk", self.dsn, str(jobs), str(jobs)]
        return float(run_json(argv, self.env())["committed_at"])

    def completed(self, jobs: int) -> int:
        return jobs - self.scalar("SELECT count(*) FROM pgqueuer")

    def enqueue_single(self, count: int) -> float:
        res = run_json(
            [self.python, self.runner, "enqueue-single", self.dsn, str(count)], self.env()
        )
        return float(res["jobs"]) / float(res["seconds"])

    def enqueue_bulk(self, count: int, batch: int) -> float | None:
        argv = [self.python, self.runner, "enqueue-bulk", self.dsn, str(count), str(batch)]
        res = run_json(argv, self.env())
        return float(res["jobs"]) / float(res["seconds"])


class Procrastinate(PgSystem):
    name = "procrastinate"

    def __init__(self, workdir: Path, bindir: Path) -> None:
        super().__init__(workdir)
        self.bindir = bindir
        self.python = str(bindir / "python")
        self.runner = str(PEERS / "runner_procrastinate.py")

    def env(self) -> dict[str, str]:
        env = super().env()
        env["PEERS_DSN"] = self.dsn
        return env

    def setup(self) -> None:
        super().setup()
        run_json([self.python, self.runner, "setup", self.dsn], self.env())

    def start_workers(self, count: int) -> None:
        argv = [
            str(self.bindir / "procrastinate"),
            "--app",
            "runner_procrastinate.app",
            "--log-level",
            "warning",
            "worker",
            "--concurrency",
            "1",
        ]
        for n in range(count):
            self.spawn(argv, self.env(), f"proc{n}")

    def wait_ready(self, count: int) -> None:
        def listening() -> bool:
            self.check_alive()
            return self.connections(listening=True) >= count

        wait_for(listening, 60, f"{count} procrastinate workers listening")

    def fill(self, jobs: int) -> float | None:
        argv = [self.python, self.runner, "enqueue-bulk", self.dsn, str(jobs), str(jobs)]
        return float(run_json(argv, self.env())["committed_at"])

    def completed(self, jobs: int) -> int:
        return self.scalar("SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'")

    def enqueue_single(self, count: int) -> float:
        res = run_json(
            [self.python, self.runner, "enqueue-single", self.dsn, str(count)], self.env()
        )
        return float(res["jobs"]) / float(res["seconds"])

    def enqueue_bulk(self, count: int, batch: int) -> float | None:
        argv = [self.python, self.runner, "enqueue-bulk", self.dsn, str(count), str(batch)]
        res = run_json(argv, self.env())
        return float(res["jobs"]) / float(res["seconds"])


class RawPg(PgSystem):
    """Not a queue system: the claim+complete limit, drained by its own workers (raw_pg.py)."""

    name = "raw"
    runner = str(PEERS / "raw_pg.py")

    def drain(self, workers: int, jobs: int) -> float:
        """Jobs/s of `workers` processes running the raw loop over `jobs` queued rows."""
        run_json([sys.executable, self.runner, "setup", self.dsn, str(jobs)], self.env())
        procs = [
            subprocess.Popen(
                [sys.executable, self.runner, "worker", self.dsn],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env=self.env(),
            )
            for _ in range(workers)
        ]
        wait_for(
            lambda: (
                self.scalar(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                )
                > workers
            ),
            30,
            "raw workers connected",
        )
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        reports = []
        for proc in procs:
            out, _ = proc.communicate(timeout=300)
            if proc.returncode != 0:
                raise PeerError(f"raw worker exited with code {proc.returncode}")
            reports.append(json.loads(out.strip().splitlines()[-1]))
        done = sum(int(r["jobs"]) for r in reports)
        if done != jobs:
            raise PeerError(f"raw workers completed {done} of {jobs} jobs")
        span = max(r["finished"] for r in reports) - min(r["started"] for r in reports)
        return jobs / span

    def enqueue_single(self, count: int) -> float:
        run_json([sys.executable, self.runner, "setup", self.dsn, "0"], self.env())
        res = run_json(
            [sys.executable, self.runner, "enqueue-single", self.dsn, str(count)], self.env()
        )
        return float(res["jobs"]) / float(res["seconds"])


class OursSqlite(System):
    name = "ours"
    backend = "sqlite"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.url = f"sqlite:///{workdir}/ours.db"
        self.store: Any = None

    def setup(self) -> None:
        from statemachine_engine.database import open_store

        (self.workdir / "run").mkdir(mode=0o700, exist_ok=True)
        os.environ["STATEMACHINE_RUNTIME_DIR"] = str(self.workdir / "run")
        self.store = open_store(self.url)

    def start_workers(self, count: int) -> None:
        import pg_bench

        self.procs = pg_bench.start_workers(self.workdir, self.url, count)

    def wait_ready(self, count: int) -> None:
        ours_ready(self, self.store, count)

    def fill(self, jobs: int) -> float | None:
        import pg_bench

        pg_bench.bulk_enqueue(self.store, jobs)
        return time.time()

    def completed(self, jobs: int) -> int:
        return int(self.store.count_jobs()["completed"])

    def enqueue_single(self, count: int) -> float:
        from statemachine_engine.transport import ring_all

        started = time.perf_counter()
        for _ in range(count):
            self.store.add_job("bench")
            ring_all({"kind": "job", "job_type": "bench"})
        return count / (time.perf_counter() - started)

    def enqueue_bulk(self, count: int, batch: int) -> float | None:
        return our_bulk(self.store, count, batch)

    def close(self) -> None:
        super().close()
        if self.store is not None:
            self.store.close()
            self.store = None


class Huey(System):
    """huey on SQLite: its consumer with N worker processes; jobs queued before it starts
    (huey has no bulk enqueue, and an idle consumer backs off its polling)."""

    name = "huey"
    backend = "sqlite"
    fill_before_workers = True

    def __init__(self, workdir: Path, bindir: Path) -> None:
        super().__init__(workdir)
        self.bindir = bindir
        self.db = workdir / "huey.db"

    def env(self) -> dict[str, str]:
        env = super().env()
        env["PEERS_HUEY_DB"] = str(self.db)
        return env

    def runner(self, *args: str) -> dict[str, Any]:
        argv = [str(self.bindir / "python"), str(PEERS / "runner_huey.py"), *args]
        return run_json(argv, self.env())

    def setup(self) -> None:
        self.runner("enqueue-single", str(self.db), "0")

    def fill(self, jobs: int) -> float | None:
        self.runner("enqueue-single", str(self.db), str(jobs))
        return None

    def start_workers(self, count: int) -> None:
        argv = [str(self.bindir / "huey_consumer"), "runner_huey.huey", "-w", str(count)]
        self.spawn([*argv, "-k", "process", "-q", "-n"], self.env(), "huey")

    def completed(self, jobs: int) -> int:
        import sqlite3

        with contextlib.closing(sqlite3.connect(self.db, timeout=5)) as conn:
            (left,) = conn.execute("SELECT count(*) FROM task").fetchone()
        return jobs - int(left)

    def enqueue_single(self, count: int) -> float:
        res = self.runner("enqueue-single", str(self.db), str(count))
        return float(res["jobs"]) / float(res["seconds"])
