"""The released 1.0 `statemachine-db` spellings: renamed commands and options are accepted
with a one-line note naming the 2.0 spelling, removed ones fail with one line saying what
replaces them, and `--format json` keeps the 1.0 JSON keys scripts parse."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from statemachine_engine.cli.common import (
    add_json_flag,
    fail,
    format_table,
    format_time,
    opened_store,
    positive_int,
    print_json,
)
from statemachine_engine.database.records import Job, RealtimeEvent
from statemachine_engine.database.store import Store

Handler = Callable[[argparse.Namespace], int]
_WINDOW = 5000

REMOVED = {
    "machine-health": "use machine-status (a dead machine shows as stale) and"
    " list-jobs --status processing",
    "controller-log": "2.0 has no controller log; use history --machine NAME",
    "list-errors": "use error-history and list-jobs --status failed",
    "recreate-database": "delete the SQLite file (or drop the PostgreSQL schema); add-job or"
    " a machine's start creates it again",
}


def note(args: argparse.Namespace, old: str, new: str) -> None:
    """Queue the one-line deprecation note for a 1.0 spelling; `print_notes` shows it once
    the command succeeded, so a failure stays one line."""
    add_note(args, f"{old} is the 1.0 spelling; use {new}")


def add_note(args: argparse.Namespace, text: str) -> None:
    """Queue a note for stderr after the command succeeded."""
    args.notes = [*getattr(args, "notes", []), text]


def print_notes(args: argparse.Namespace) -> None:
    """Print the queued notes on stderr, one line each."""
    for text in getattr(args, "notes", []):
        print(f"note: {text}", file=sys.stderr)


def with_input_file(data: Any, path: str) -> dict[str, Any]:
    """Job data with `input_file_path`, the absolute path of an existing file, merged into
    the payload object (as `add-job --input-file` did in 1.0)."""
    if not os.path.exists(path):
        fail(f"--input-file: input file not found: {path}")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        fail(
            "--input-file adds the key input_file_path to the job data, so --payload must be"
            f" a JSON object, got {type(data).__name__}"
        )
    return {**data, "input_file_path": os.path.abspath(path)}


def add_format_option(parser: argparse.ArgumentParser) -> None:
    """`--format table|json`, the 1.0 spelling of `--json`."""
    parser.add_argument(
        "--format",
        choices=("table", "json"),
        help="1.0 spelling: --format json is --json, with the 1.0 JSON keys added",
    )


def apply_released_options(args: argparse.Namespace) -> None:
    """Turn the 1.0 options a command was given into their 2.0 meaning, with a note."""
    if getattr(args, "format", None) == "json":
        note(args, "--format json", "--json")
        args.json = True
        args.v1_keys = True
    machine = getattr(args, "machine_flag", None)
    if machine is not None:
        note(args, "--machine NAME", "machine-status NAME")
        if args.name is not None and args.name != machine:
            fail(f"give the machine once: {args.name!r} or --machine {machine!r}")
        args.name = machine


def v1_machine(row: dict[str, Any]) -> dict[str, Any]:
    """A machine-status JSON row with the keys of 1.0 `machine-state --format json`."""
    return {**row, "last_activity": format_time(row.get("updated_at")), "metadata": None}


def v1_transition(row: dict[str, Any]) -> dict[str, Any]:
    """A history JSON row with the keys of 1.0 `transition-history --format json`."""
    when = format_time(row.get("created_at"))
    return {**row, "machine": row.get("machine_name"), "timestamp": when}


def _renamed(new: str, old: str, handler: Handler) -> Handler:
    def run(args: argparse.Namespace) -> int:
        note(args, old, new)
        return handler(args)

    return run


def cmd_cleanup(args: argparse.Namespace) -> int:
    """The 1.0 `cleanup --status S`: completed jobs are deleted by prune; others refused."""
    refusals = {
        "pending": "pending jobs are not deleted; cancel-job cancels one",
        "processing": "processing jobs are not deleted; reset-processing returns stuck ones",
        "failed": "failed jobs are kept for retry-job and never deleted",
    }
    if args.status in refusals:
        fail(f"cleanup --status {args.status}: {refusals[args.status]}")
    note(args, "cleanup --status completed", "prune --older-than DURATION")
    add_note(
        args,
        "this deleted all finished history (completed and cancelled jobs, handled events,"
        " transitions, realtime rows)",
    )
    with opened_store(args.db) as store:
        deleted = store.prune(time.time())
    print(", ".join(f"{table} {count}" for table, count in deleted.items()) + " deleted")
    return 0


def cmd_cleanup_events(args: argparse.Namespace) -> int:
    """The 1.0 `cleanup-events`: pending events of every machine are marked processed."""
    if args.status == "processed":
        fail("cleanup-events --status processed: prune --older-than DURATION deletes them")
    add_note(
        args,
        "cleanup-events is a 1.0 command; 2.0 marks pending events processed instead of"
        " deleting them (prune --older-than deletes handled ones)",
    )
    cleared = 0
    with opened_store(args.db) as store:
        while pending := store.list_events(status="pending", limit=500):
            for target in dict.fromkeys(e.target_machine for e in pending):
                cleared += store.clear_events(target)
    print(f"marked {cleared} pending event(s) processed")
    return 0


def _error_rows(store: Store, machine: str | None, since: float | None, limit: int) -> list[Any]:
    """Machine errors and failed job attempts from the realtime stream, newest first, read
    backwards in windows of ids so the newest rows come first on any backend."""
    found: list[RealtimeEvent] = []
    end = store.last_realtime_id()
    while end > 0:
        start = max(0, end - _WINDOW)
        for row in reversed(store.realtime_since(start, end - start)):
            if row.id > end:
                continue
            if since is not None and row.created_at < since:
                return found
            is_error = row.kind == "error" or (
                row.kind == "job" and isinstance(row.payload, dict) and "error" in row.payload
            )
            if is_error and machine in (None, row.machine_name):
                found.append(row)
                if len(found) >= limit:
                    return found
        end = start
    return found


def _error_dict(row: RealtimeEvent) -> dict[str, Any]:
    payload = row.payload if isinstance(row.payload, dict) else {}
    return {
        "id": row.id,
        "kind": row.kind,
        "machine": row.machine_name,
        "job_id": payload.get("job_id"),
        "state": payload.get("state"),
        "error_message": payload.get("error"),
        "created_at": row.created_at,
        "timestamp": format_time(row.created_at),
    }


def _job_errors(job: Job, as_json: bool) -> int:
    if as_json:
        print_json({"job_id": job.job_id, "status": job.status, "errors": list(job.errors)})
        return 0
    if not job.errors:
        print(f"job {job.job_id!r} ({job.status}) has no errors")
    for number, error in enumerate(job.errors, 1):
        print(f"{number}. {error}")
    return 0


def cmd_error_history(args: argparse.Namespace) -> int:
    """A job's errors, or the newest machine errors and failed attempts."""
    since = time.time() - args.hours * 3600 if args.hours else None
    with opened_store(args.db) as store:
        if args.job_id is not None:
            job = store.get_job(args.job_id)
            if job is None:
                fail(f"no job {args.job_id!r}")
            return _job_errors(job, args.json)
        rows = [_error_dict(r) for r in _error_rows(store, args.machine, since, args.limit)]
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("no errors recorded")
        return 0
    keys = ("id", "timestamp", "machine", "job_id", "state", "error_message")
    table = [tuple(r[k] for k in keys) for r in rows]
    print(format_table(("id", "time", "machine", "job", "state", "error"), table))
    return 0


def add_released_commands(
    sub: Any, add_command: Any, show_job: Handler, list_events: Handler
) -> None:
    """Register the 1.0 commands: details, cleanup, cleanup-events, process-events,
    error-history, and the removed ones."""
    p = add_command(
        sub, "details", _renamed("show-job", "details", show_job), "1.0 spelling of show-job"
    )
    p.add_argument("job_id", metavar="JOB_ID")
    add_json_flag(p)
    add_format_option(p)

    help_text = (
        "1.0: --status completed deletes all finished history now, as prune does; other"
        " statuses are refused"
    )
    p = add_command(sub, "cleanup", cmd_cleanup, help_text)
    choices = ("pending", "processing", "completed", "failed")
    p.add_argument("--status", choices=choices, required=True, help="only completed is deleted")

    help_text = "1.0: mark every machine's pending events processed"
    p = add_command(sub, "cleanup-events", cmd_cleanup_events, help_text)
    p.add_argument("--status", choices=("pending", "processed"), help="pending (default)")

    def process_events(args: argparse.Namespace) -> int:
        args.target, args.status, args.limit, args.json = args.machine, "pending", 500, False
        return list_events(args)

    help_text = "1.0 spelling of list-events --target MACHINE --status pending"
    renamed = _renamed(
        "list-events --target MACHINE --status pending", "process-events", process_events
    )
    p = add_command(sub, "process-events", renamed, help_text)
    p.add_argument("machine", metavar="MACHINE")

    help_text = "a job's errors, or recent machine errors and failed attempts, newest first"
    p = add_command(sub, "error-history", cmd_error_history, help_text)
    p.add_argument("job_id", nargs="?", metavar="JOB_ID", help="only this job's errors")
    p.add_argument("--machine", metavar="NAME", help="only this machine")
    p.add_argument("--hours", type=positive_int, metavar="N", help="only the last N hours")
    p.add_argument("--limit", type=positive_int, default=20, metavar="N", help="at most N (20)")
    add_json_flag(p)
    add_format_option(p)

    for name, replacement in REMOVED.items():
        add_command(sub, name, None, f"removed in 2.0: {replacement}")
