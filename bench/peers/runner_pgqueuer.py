"""pgqueuer driver, run by bench/.venv-pgqueuer's interpreter (public pgqueuer API only).

    python runner_pgqueuer.py setup|worker|enqueue-single|enqueue-bulk DSN [COUNT [BATCH]]

Enqueue commands print one JSON line: {"jobs": n, "seconds": s, "committed_at": wall clock}.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pgqueuer
from pgqueuer import AsyncpgDriver, PgQueuer, Queries
from pgqueuer.models import Job

ENTRYPOINT = "noop"


@asynccontextmanager
async def factory() -> AsyncIterator[PgQueuer]:
    """A worker with one no-op entrypoint (the shape `pgq run` expects)."""
    conn = await asyncpg.connect(os.environ["PEERS_DSN"])
    pgq = PgQueuer(AsyncpgDriver(conn))

    @pgq.entrypoint(ENTRYPOINT)
    async def noop(job: Job) -> None:
        return None

    try:
        yield pgq
    finally:
        await conn.close()


async def enqueue(dsn: str, count: int, batch: int) -> float:
    """Seconds to enqueue `count` jobs: one per call (batch 0) or lists of `batch`."""
    conn = await asyncpg.connect(dsn)
    queries = Queries(AsyncpgDriver(conn))
    try:
        started = time.perf_counter()
        if batch == 0:
            for _ in range(count):
                await queries.enqueue(ENTRYPOINT, None)
        else:
            for first in range(0, count, batch):
                n = min(batch, count - first)
                await queries.enqueue([ENTRYPOINT] * n, [None] * n, [0] * n)
        return time.perf_counter() - started
    finally:
        await conn.close()


async def setup(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await Queries(AsyncpgDriver(conn)).install()
    finally:
        await conn.close()


def main() -> None:
    command, dsn = sys.argv[1], sys.argv[2]
    if command == "setup":
        asyncio.run(setup(dsn))
    elif command == "worker":
        os.environ["PEERS_DSN"] = dsn
        asyncio.run(pgqueuer.run(factory))
    else:
        count = int(sys.argv[3])
        batch = int(sys.argv[4]) if command == "enqueue-bulk" else 0
        seconds = asyncio.run(enqueue(dsn, count, batch))
        print(json.dumps({"jobs": count, "seconds": seconds, "committed_at": time.time()}))


if __name__ == "__main__":
    main()
