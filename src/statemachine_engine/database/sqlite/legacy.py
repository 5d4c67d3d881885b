"""Opening a statemachine-engine 1.0 database (`data/pipeline.db`): its tables are renamed to
`legacy_1_0_<table>`, the 2.0 schema is created, and the jobs, events between machines and
state-change history are copied over, all in the migration's transaction. The 1.0 tables are
kept for inspection; nothing of them is deleted."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import apsw

logger = logging.getLogger(__name__)

PREFIX = "legacy_1_0_"
#: Fixed statements (no SQL is built from strings at run time).
RENAMES = {
    "jobs": 'ALTER TABLE "jobs" RENAME TO "legacy_1_0_jobs"',
    "machine_events": 'ALTER TABLE "machine_events" RENAME TO "legacy_1_0_machine_events"',
    "machine_state": 'ALTER TABLE "machine_state" RENAME TO "legacy_1_0_machine_state"',
    "realtime_events": 'ALTER TABLE "realtime_events" RENAME TO "legacy_1_0_realtime_events"',
}
LEGACY_FILE = "pipeline.db"
_noticed: set[str] = set()


def legacy_epoch(value: Any) -> float | None:
    """A 1.0 timestamp (`CURRENT_TIMESTAMP` text, UTC, or epoch seconds) as epoch seconds;
    registered as the SQL function `legacy_epoch` while copying."""
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _sql_epoch(*values: Any) -> float | None:
    return legacy_epoch(values[0])


COPY_JOBS = """
INSERT INTO jobs (job_id, job_type, machine_type, data, status, priority, attempts,
                  created_at, started_at, completed_at, result, error_message)
SELECT job_id, job_type, machine_type, data,
       CASE WHEN status IN ('completed', 'failed', 'cancelled') THEN status ELSE 'pending' END,
       COALESCE(priority, 5), CASE WHEN status IN ('completed', 'failed') THEN 1 ELSE 0 END,
       COALESCE(legacy_epoch(created_at), :now),
       CASE WHEN status IN ('completed', 'failed') THEN legacy_epoch(started_at) END,
       CASE WHEN status IN ('completed', 'failed', 'cancelled')
            THEN legacy_epoch(completed_at) END,
       result, error_message
FROM legacy_1_0_jobs ORDER BY id
"""

COPY_EVENTS = """
INSERT INTO machine_events (id, target_machine, source_machine, event_type, job_id, payload,
                            status, created_at, processed_at)
SELECT id, target_machine, source_machine, event_type, job_id, payload,
       CASE WHEN status = 'pending' THEN 'pending' ELSE 'processed' END,
       COALESCE(legacy_epoch(created_at), :now), legacy_epoch(processed_at)
FROM legacy_1_0_machine_events ORDER BY id
"""

COPY_TRANSITIONS = """
INSERT INTO transitions (machine_name, step, from_state, to_state, event, job_id, created_at)
SELECT machine_name, 0, json_extract(payload, '$.from_state'),
       json_extract(payload, '$.to_state'), json_extract(payload, '$.event_trigger'),
       json_extract(payload, '$.job_id'),
       COALESCE(json_extract(payload, '$.timestamp'), legacy_epoch(created_at), :now)
FROM legacy_1_0_realtime_events
WHERE event_type = 'state_change' AND json_valid(payload)
      AND json_extract(payload, '$.to_state') IS NOT NULL
ORDER BY id
"""


@dataclass(frozen=True)
class Carried:
    """What was copied from a 1.0 database."""

    jobs: int
    pending: int
    events: int
    transitions: int


def _tables(db: apsw.Connection) -> set[str]:
    rows: list[Any] = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {str(r["name"]) for r in rows}


def is_legacy(db: apsw.Connection) -> bool:
    """A 1.0 database: a `jobs` table without 2.0's `run_after` and no migrations table."""
    tables = _tables(db)
    if "jobs" not in tables or "schema_migrations" in tables:
        return False
    info: list[Any] = db.execute("PRAGMA table_info(jobs)").fetchall()
    columns = {str(r["name"]) for r in info}
    return "run_after" not in columns


def set_aside(db: apsw.Connection) -> None:
    """Rename the 1.0 tables (their indexes follow) so the 2.0 schema can be created."""
    present = _tables(db)
    for table, rename in RENAMES.items():
        if table in present:
            db.execute(rename)


def carry_over(db: apsw.Connection, now: float) -> Carried:
    """Copy jobs (a 1.0 `processing` job is pending again: its worker cannot be running
    against this schema), events and state changes into the new tables."""
    present = _tables(db)
    args = {"now": now}
    db.create_scalar_function("legacy_epoch", _sql_epoch, 1, deterministic=True)

    def copy(table: str, sql: str) -> int:
        if PREFIX + table not in present:
            return 0
        db.execute(sql, args)
        return int(db.changes())

    jobs = copy("jobs", COPY_JOBS)
    pending: list[Any] = db.execute(
        "SELECT count(*) AS n FROM jobs WHERE status = 'pending'"
    ).fetchall()
    return Carried(
        jobs=jobs,
        pending=int(pending[0]["n"]),
        events=copy("machine_events", COPY_EVENTS),
        transitions=copy("realtime_events", COPY_TRANSITIONS),
    )


def report(path: str, carried: Carried) -> None:
    logger.warning(
        "migrated the statemachine-engine 1.0 database %s in place: %d jobs (%d pending), "
        "%d events, %d transitions; the 1.0 tables are kept as %s*",
        path,
        carried.jobs,
        carried.pending,
        carried.events,
        carried.transitions,
        PREFIX,
    )


def notice_legacy_neighbour(path: str) -> None:
    """Warn once per process when a 1.0 `pipeline.db` sits next to the database opened
    (typically the default `./data/statemachine.db` beside 1.0's `./data/pipeline.db`)."""
    if path == ":memory:" or os.path.basename(path) == LEGACY_FILE:
        return
    legacy = os.path.join(os.path.dirname(path) or ".", LEGACY_FILE)
    if legacy in _noticed or not os.path.isfile(legacy):
        return
    _noticed.add(legacy)
    logger.warning(
        "using the database %s; %s (statemachine-engine 1.0's default) is not used: "
        "pass --db sqlite:///%s (or set STATEMACHINE_DB) to migrate it in place and use it",
        path,
        legacy,
        legacy,
    )
