"""`statemachine-cli add-jobs`: enqueue many jobs from JSON Lines in one transaction.

Each non-blank line is one JSON object: `job_type` (or `type`; default `--type`), and
optionally `job_id` (or `id`), `data` (or `payload`), `machine_type`, `priority`,
`max_attempts`, `run_after` (epoch seconds or ISO 8601) or `delay` (seconds from now). The
whole input is checked first (an error names FILE:LINE and nothing is added), then added in
one transaction, and the workers of each job type are woken once.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Iterator
from typing import IO, Any

from statemachine_engine.cli.common import (
    fail,
    opened_store,
    point_in_time,
    print_json,
)
from statemachine_engine.database.records import NewJob
from statemachine_engine.database.store import MAX_PAYLOAD_BYTES
from statemachine_engine.errors import DuplicateJobError, UsageError
from statemachine_engine.names import name_problem

#: A line holds at most one job's data plus its other fields.
MAX_LINE_BYTES = MAX_PAYLOAD_BYTES + 64 * 1024
_ALIASES = {"type": "job_type", "id": "job_id", "payload": "data"}
_KEYS = (
    "job_type",
    "job_id",
    "data",
    "machine_type",
    "priority",
    "max_attempts",
    "run_after",
    "delay",
)


def _lines(source: str) -> Iterator[tuple[int, str]]:
    """(line number, text) of FILE or stdin, each line bounded."""
    try:
        handle: IO[bytes] = sys.stdin.buffer if source == "-" else open(source, "rb")  # noqa: SIM115
    except OSError as exc:
        fail(f"cannot read {source}: {exc.strerror or exc}")
    with handle if source != "-" else _borrowed(handle):
        for number, raw in enumerate(iter(lambda: handle.readline(MAX_LINE_BYTES + 1), b""), 1):
            if len(raw) > MAX_LINE_BYTES:
                fail(f"{_name(source)}:{number}: line longer than {MAX_LINE_BYTES} bytes")
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError:
                fail(f"{_name(source)}:{number}: not UTF-8 text")


class _borrowed:
    """A context manager that leaves stdin open."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle

    def __enter__(self) -> IO[bytes]:
        return self.handle

    def __exit__(self, *exc: object) -> None:
        return None


def _name(source: str) -> str:
    return "<stdin>" if source == "-" else source


def _number(value: Any, key: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UsageError(f"{key} must be an integer >= {minimum}, got {value!r}")
    return value


def _seconds(value: Any, key: str) -> float:
    if isinstance(value, str) and key == "run_after":
        try:
            return point_in_time(value)
        except argparse.ArgumentTypeError as exc:
            raise UsageError(f"run_after: {exc}") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise UsageError(f"{key} must be a number of seconds, got {value!r}")
    if value < 0:
        raise UsageError(f"{key} must not be negative, got {value!r}")
    return float(value)


def job_from_line(fields: Any, defaults: argparse.Namespace, now: float) -> NewJob:
    """The job one line describes, the command's options filling what it leaves out."""
    if not isinstance(fields, dict):
        raise UsageError(f"expected a JSON object, got {type(fields).__name__}")
    given: dict[str, Any] = {_ALIASES.get(str(key), str(key)): v for key, v in fields.items()}
    unknown = sorted(set(given) - set(_KEYS))
    if unknown:
        raise UsageError(f"unknown key {unknown[0]!r}; known keys: {', '.join(_KEYS)}")
    job_type = given.get("job_type", defaults.job_type)
    if not isinstance(job_type, str) or not job_type:
        raise UsageError("no job_type (give it on the line or with --type)")
    job_id = given.get("job_id")
    if job_id is not None:
        problem = name_problem(job_id) if isinstance(job_id, str) else "is not a string"
        if problem:
            raise UsageError(f"job_id {job_id!r} {problem}")
    machine_type = given.get("machine_type", defaults.machine_type)
    if machine_type is not None and (not isinstance(machine_type, str) or not machine_type):
        raise UsageError("machine_type must be a non-empty string")
    if "run_after" in given and "delay" in given:
        raise UsageError("give either delay or run_after, not both")
    run_after: float | None = None
    if "run_after" in given:
        run_after = _seconds(given["run_after"], "run_after")
    elif "delay" in given or defaults.delay:
        run_after = now + _seconds(given.get("delay", defaults.delay), "delay")
    return NewJob(
        job_type,
        given.get("data"),
        job_id,
        machine_type,
        _number(given.get("priority", defaults.priority), "priority", 0),
        _number(given.get("max_attempts", defaults.max_attempts), "max_attempts", 1),
        run_after,
    )


def _no_constant(name: str) -> Any:
    raise UsageError(f"{name} is not a JSON value")


def read_jobs(source: str, defaults: argparse.Namespace, now: float) -> list[NewJob]:
    """Every job of FILE (`-`: stdin); the first bad line stops with FILE:LINE: what."""
    jobs = []
    for number, text in _lines(source):
        if not text.strip():
            continue
        try:
            fields = json.loads(text, parse_constant=_no_constant)
            jobs.append(job_from_line(fields, defaults, now))
        except json.JSONDecodeError as exc:
            fail(f"{_name(source)}:{number}:{exc.colno}: not valid JSON: {exc.msg}")
        except UsageError as exc:
            fail(f"{_name(source)}:{number}: {exc}")
    return jobs


def cmd_add_jobs(args: argparse.Namespace) -> int:
    """Enqueue the jobs of a JSON Lines file in one transaction."""
    jobs = read_jobs(args.input_file, args, time.time())
    with opened_store(args.db, create=True) as store:
        try:
            added = store.add_jobs(jobs, if_absent=args.if_absent)
        except DuplicateJobError as exc:
            fail(f"{exc}; nothing was added (use --if-absent to skip existing jobs)")
    if args.json:
        print_json({"added": added, "skipped": len(jobs) - len(added)})
        return 0
    skipped = len(jobs) - len(added)
    print(f"added {len(added)} job(s)" + (f", skipped {skipped} existing" if skipped else ""))
    return 0
