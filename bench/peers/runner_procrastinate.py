"""procrastinate driver, run by bench/.venv-procrastinate's interpreter (public API only).

Workers are procrastinate's own CLI: `procrastinate --app runner_procrastinate.app worker
--concurrency 1`, with PEERS_DSN in the environment (read here too; DSN is for the record).

    python runner_procrastinate.py setup|enqueue-single|enqueue-bulk DSN [COUNT [BATCH]]

Enqueue commands print one JSON line: {"jobs": n, "seconds": s, "committed_at": wall clock}.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

import procrastinate

app = procrastinate.App(
    connector=procrastinate.PsycopgConnector(conninfo=os.environ.get("PEERS_DSN", ""))
)


@app.task(name="noop")
async def noop() -> None:
    return None


async def enqueue(count: int, batch: int) -> float:
    """Seconds to defer `count` jobs: one `defer_async` each (batch 0) or `batch_defer_async`."""
    async with app.open_async():
        started = time.perf_counter()
        if batch == 0:
            for _ in range(count):
                await noop.defer_async()
        else:
            for first in range(0, count, batch):
                await noop.batch_defer_async(*({} for _ in range(min(batch, count - first))))
        return time.perf_counter() - started


async def setup() -> None:
    async with app.open_async():
        await app.schema_manager.apply_schema_async()


def main() -> None:
    command = sys.argv[1]
    if command == "setup":
        asyncio.run(setup())
    else:
        count = int(sys.argv[3])
        batch = int(sys.argv[4]) if command == "enqueue-bulk" else 0
        seconds = asyncio.run(enqueue(count, batch))
        print(json.dumps({"jobs": count, "seconds": seconds, "committed_at": time.time()}))


if __name__ == "__main__":
    main()
