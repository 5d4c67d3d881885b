"""RELIABILITY-TESTS #17, a network partition on PostgreSQL: worker A reaches the server
through a local TCP proxy that stops carrying A's bytes (both ways, connections left open,
as a partition with retransmissions looks to both ends) for 2 x lease while A holds a job.
Pass: B takes the job over and finishes it; once healed, A's late completion is fenced; the
downstream `done` event is sent once; A carries on with new jobs."""

from __future__ import annotations

import contextlib
import hashlib
import json
import select
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

LEASE = 2.0


class PartitionProxy:
    """Forwards TCP connections to `target`; `cut()` stops forwarding in both directions
    (nothing is read, so the kernels' buffers fill and the peers wait), `heal()` resumes."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.flowing = threading.Event()
        self.flowing.set()
        self.closed = threading.Event()
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self) -> None:
        self.flowing.clear()

    def heal(self) -> None:
        self.flowing.set()

    def close(self) -> None:
        self.closed.set()
        self.flowing.set()
        for sock in [self.listener, *self.sockets]:
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
                upstream = socket.create_connection(self.target)
            except OSError:
                return
            self.sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError, ValueError):
            while not self.closed.is_set():
                self.flowing.wait()
                ready, _, _ = select.select([source], [], [], 0.05)
                if not ready or not self.flowing.is_set():
                    continue
                data = source.recv(65536)
                if not data:
                    sink.shutdown(socket.SHUT_WR)
                    return
                sink.sendall(data)


@pytest.fixture
def pg_url(tmp_path: Path) -> Iterator[str]:
    from statemachine_engine.database.postgres import testing as pg_testing

    schema = "p_" + hashlib.md5(str(tmp_path).encode(), usedforsecurity=False).hexdigest()[:20]
    url = pg_testing.with_schema(pg_testing.check_server(), schema)
    yield url
    pg_testing.drop_schema(url)


@pytest.fixture
def proxy(pg_url: str) -> Iterator[PartitionProxy]:
    parts = urlsplit(pg_url)
    made = PartitionProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    yield made
    made.close()


def via(url: str, port: int) -> str:
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@127.0.0.1:{port}" if userinfo else f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


def runs(workdir: Path, job_id: str) -> int:
    path = workdir / f"{job_id}.runs"
    return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.mark.timeout(90)
def test_a_partitioned_worker_is_fenced_and_recovers(
    kit: Any, procs: Any, pg_url: str, proxy: PartitionProxy, workdir: Path
) -> None:
    from statemachine_engine.database.postgres import PostgresStore

    store = PostgresStore(pg_url)

    def done_events(job_id: str) -> int:
        rows = store.conn.read(
            lambda tx: tx.rows(
                "SELECT payload FROM machine_events WHERE target_machine = 'sink'"
                " AND event_type = 'done'"
            )
        )
        payloads = [r["payload"] for r in rows]
        decoded = [json.loads(p) if isinstance(p, str) else p for p in payloads]
        return sum(1 for p in decoded if p.get("job") == job_id)

    try:
        procs.db_url = pg_url
        command = "echo run >> {job_id}.runs; sleep 3"
        config = procs.config("worker", kit.worker_yaml(command, sink="sink"))
        a = procs.machine(config, "a", "--db", via(pg_url, proxy.port))
        kit.wait_until(lambda: store.get_machine("a") is not None, 20, "worker a running")
        store.add_job("task", job_id="cut")
        kit.wait_until(lambda: runs(workdir, "cut") == 1, 20, "a started the job")
        b = procs.machine(config, "b")
        kit.wait_until(lambda: store.get_machine("b") is not None, 20, "worker b running")
        proxy.cut()
        try:
            kit.wait_until(lambda: runs(workdir, "cut") == 2, 2 * LEASE + 10, "b took the job over")
            kit.wait_until(lambda: done_events("cut") == 1, 15, "b finished it and reported")
        finally:
            proxy.heal()
        job = store.get_job("cut")
        assert job is not None and (job.status, job.attempts) == ("completed", 2)
        kit.wait_until(lambda: "lease lost" in procs.log(a), 30, "a noticed it lost the lease")
        for n in range(4):
            store.add_job("task", job_id=f"after{n}")

        def drained() -> bool:
            counts = store.count_jobs()
            return counts.get("completed", 0) == 5

        kit.wait_until(drained, 40, "a and b drained the jobs added after the heal")
        assert done_events("cut") == 1, "a late completion sent a second downstream event"
        assert runs(workdir, "cut") == 2
        assert all(runs(workdir, f"after{n}") == 1 for n in range(4))
        assert a.poll() is None and b.poll() is None, "a worker died"
    finally:
        store.close()
