"""The one-at-a-time claim+complete limit on PostgreSQL: a plain psycopg loop, no framework.

Per job two transactions on one connection: claim (`UPDATE … WHERE id = (SELECT … FOR UPDATE
SKIP LOCKED LIMIT 1) RETURNING id`), then complete (`UPDATE … SET status = 'done'`). Run
with our .venv's interpreter:

    python raw_pg.py setup DSN COUNT    # table raw_jobs with COUNT queued rows
    python raw_pg.py worker DSN         # waits for a line on stdin, drains, prints JSON
    python raw_pg.py enqueue-single DSN COUNT
"""

from __future__ import annotations

import json
import sys
import time

import psycopg

CLAIM = """
UPDATE raw_jobs SET status = 'running', started_at = now()
WHERE id = (
    SELECT id FROM raw_jobs WHERE status = 'queued' ORDER BY id
    FOR UPDATE SKIP LOCKED LIMIT 1
)
RETURNING id
"""
COMPLETE = "UPDATE raw_jobs SET status = 'done', finished_at = now() WHERE id = %s"


def setup(dsn: str, count: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS raw_jobs (id bigserial PRIMARY KEY,"
            " status text NOT NULL DEFAULT 'queued', payload jsonb,"
            " started_at timestamptz, finished_at timestamptz)"
        )
        conn.execute(
            "CREATE INDEX IF NOT EXISTS raw_jobs_queued ON raw_jobs (id) WHERE status = 'queued'"
        )
        conn.execute(
            "INSERT INTO raw_jobs (payload) SELECT '{}'::jsonb FROM generate_series(1, %s)",
            (count,),
        )


def worker(dsn: str) -> None:
    """Claim and complete until nothing is left; print jobs done and the wall-clock span."""
    with psycopg.connect(dsn) as conn:
        sys.stdin.readline()
        started = time.time()
        done = 0
        while True:
            with conn.transaction():
                row = conn.execute(CLAIM).fetchone()
            if row is None:
                break
            with conn.transaction():
                conn.execute(COMPLETE, (row[0],))
            done += 1
        print(json.dumps({"jobs": done, "started": started, "finished": time.time()}))


def enqueue_single(dsn: str, count: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        started = time.perf_counter()
        for _ in range(count):
            conn.execute("INSERT INTO raw_jobs (payload) VALUES ('{}'::jsonb)")
        seconds = time.perf_counter() - started
    print(json.dumps({"jobs": count, "seconds": seconds}))


def main() -> None:
    command, dsn = sys.argv[1], sys.argv[2]
    if command == "setup":
        setup(dsn, int(sys.argv[3]))
    elif command == "worker":
        worker(dsn)
    elif command == "enqueue-single":
        enqueue_single(dsn, int(sys.argv[3]))
    else:
        raise SystemExit(f"raw_pg: unknown command {command!r}")


if __name__ == "__main__":
    main()
