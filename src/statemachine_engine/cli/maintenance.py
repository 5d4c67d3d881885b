"""`statemachine-cli prune` and `backup`: keeping the database small and safe."""

from __future__ import annotations

import argparse
import re
import time
from typing import Any

from statemachine_engine.cli.common import fail, opened_store

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
PG_DUMP_HINT = (
    "backup copies a SQLite database; for PostgreSQL use pg_dump, e.g."
    " `pg_dump --format=custom --file=statemachine.dump DBNAME` (docs: production.md)"
)


def duration(text: str) -> float:
    """argparse type: a number with its unit, `90s`, `30m`, `12h` or `7d`, as seconds > 0.
    A bare number is refused: `--older-than 7` could mean seconds or days."""
    found = _DURATION.fullmatch(text.strip())
    if found is None:
        raise argparse.ArgumentTypeError(
            f"expected a number with a unit (s, m, h, d), like 7d, 12h, 30m or 90s, got {text!r}"
        )
    seconds = float(found[1]) * _UNITS[found[2]]
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"the duration must be above 0, got {text!r}")
    return seconds


def cmd_prune(args: argparse.Namespace) -> int:
    """Delete finished history older than --older-than (with --dry-run, only count it)."""
    with opened_store(args.db) as store:
        counts = store.prune(time.time() - args.older_than, dry_run=args.dry_run)
    listed = ", ".join(f"{table} {count}" for table, count in counts.items())
    print(f"{listed} would be deleted (dry run)" if args.dry_run else f"{listed} deleted")
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    """Write a consistent copy of the SQLite database to DEST while machines run."""
    from statemachine_engine.database.connect import default_url, sqlite_path
    from statemachine_engine.database.sqlite.backup import backup

    url = args.db or default_url()
    if url.startswith(("postgresql://", "postgres://")):
        fail(PG_DUMP_HINT)
    source = sqlite_path(url)
    if source == ":memory:":
        fail("an in-memory database cannot be backed up")
    size = backup(source, args.dest)
    print(f"backed up {source} to {args.dest} ({size} bytes)")
    return 0


def add_maintenance_commands(sub: Any, add_command: Any) -> None:
    """Register prune and backup."""
    help_text = (
        "delete completed/cancelled jobs, handled events, transitions and realtime rows older"
        " than a duration (pending, processing and failed jobs are kept)"
    )
    p = add_command(sub, "prune", cmd_prune, help_text)
    p.add_argument(
        "--older-than",
        type=duration,
        required=True,
        metavar="DURATION",
        help="a number with a unit: 7d, 12h, 30m, 90s",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="count what would be deleted; delete nothing"
    )

    help_text = (
        "copy the SQLite database to DEST while machines keep running (SQLite's online"
        " backup; PostgreSQL: use pg_dump)"
    )
    p = add_command(sub, "backup", cmd_backup, help_text)
    p.add_argument("dest", metavar="DEST", help="the new backup file (must not exist)")
