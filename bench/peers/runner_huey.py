"""huey driver, run by bench/.venv-huey's interpreter (public huey API only).

Workers are huey's own consumer: `huey_consumer runner_huey.huey -w N -k process -q`, with
PEERS_HUEY_DB naming the SQLite file.

    python runner_huey.py enqueue-single FILE COUNT

Prints one JSON line: {"jobs": n, "seconds": s}. huey has no bulk enqueue.
"""

from __future__ import annotations

import json
import os
import sys
import time

from huey import SqliteHuey

huey = SqliteHuey("peers", filename=os.environ.get("PEERS_HUEY_DB", "huey.db"))


@huey.task()
def noop() -> None:
    return None


def main() -> None:
    command, count = sys.argv[1], int(sys.argv[3])
    if command != "enqueue-single":
        raise SystemExit(f"runner_huey: unknown command {command!r}")
    # Enqueued through the importable module, so the consumer finds `runner_huey.noop`.
    import runner_huey

    started = time.perf_counter()
    for _ in range(count):
        runner_huey.noop()
    print(json.dumps({"jobs": count, "seconds": time.perf_counter() - started}))


if __name__ == "__main__":
    main()
