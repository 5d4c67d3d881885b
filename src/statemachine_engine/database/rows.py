"""Rows to records: one mapping shared by every store adapter."""

from __future__ import annotations

import dataclasses
from typing import Any

from statemachine_engine.database.codec import decode, encode
from statemachine_engine.database.records import Job, MachineEvent, MachineStatus, TransitionRecord

_MACHINE_FIELDS = frozenset(f.name for f in dataclasses.fields(MachineStatus))
_TRANSITION_FIELDS = frozenset(f.name for f in dataclasses.fields(TransitionRecord))


def job_from_row(row: dict[str, Any]) -> Job:
    """A `jobs` row as a Job record."""
    return Job(
        job_id=row["job_id"],
        job_type=row["job_type"],
        machine_type=row["machine_type"],
        data=decode(row["data"]),
        status=row["status"],
        priority=row["priority"],
        attempts=row["attempts"],
        max_attempts=row["max_attempts"],
        lease_owner=row["lease_owner"],
        lease_expires_at=row["lease_expires_at"],
        run_after=row["run_after"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        completed_at=row["completed_at"],
        result=decode(row["result"]),
        error_message=row["error_message"],
        errors=tuple(decode(row["errors"]) or ()),
    )


def event_from_row(row: dict[str, Any]) -> MachineEvent:
    """A `machine_events` row as a MachineEvent record."""
    return MachineEvent(
        id=row["id"],
        target_machine=row["target_machine"],
        source_machine=row["source_machine"],
        event_type=row["event_type"],
        job_id=row["job_id"],
        payload=decode(row["payload"]),
        status=row["status"],
        created_at=row["created_at"],
        processed_at=row["processed_at"],
        deliveries=row["deliveries"],
        error_message=row["error_message"],
    )


def machine_from_row(row: dict[str, Any]) -> MachineStatus:
    """A `machine_state` row as a MachineStatus; columns a domain schema added are ignored."""
    return MachineStatus(**{k: v for k, v in row.items() if k in _MACHINE_FIELDS})


def transition_from_row(row: dict[str, Any]) -> TransitionRecord:
    """A `transitions` row as a TransitionRecord."""
    return TransitionRecord(**{k: v for k, v in row.items() if k in _TRANSITION_FIELDS})


def claimed_notice(row: dict[str, Any]) -> dict[str, Any]:
    """The realtime payload announcing that the job in `row` was claimed."""
    return {
        "job_id": row["job_id"],
        "job_type": row["job_type"],
        "status": "processing",
        "attempt": row["attempts"],
    }


def machine_of(owner: str) -> str:
    """The machine name in a lease owner (`machine@host:pid` or just `machine`)."""
    return owner.split("@", 1)[0]


def failed_attempt(
    row: dict[str, Any], job_id: str, error: str, retry_delay: float | None, now: float
) -> tuple[str, str, float, float | None]:
    """What failing an attempt writes, from the job's `attempts`, `max_attempts` and
    `errors`: (status, error history JSON, run_after, completed_at). Back to pending after
    the delay, or failed for good without a delay or at max attempts."""
    errors = [*(decode(row["errors"]) or ()), error]
    final = retry_delay is None or row["attempts"] >= row["max_attempts"]
    return (
        "failed" if final else "pending",
        encode(errors, what=f"error history of job {job_id}"),
        now + max(retry_delay or 0.0, 0.0),
        now if final else None,
    )


def interrupted_event(
    row: dict[str, Any], why: str, max_deliveries: int
) -> tuple[str, str, dict[str, Any]]:
    """What recovering an event whose handling a dead run left unfinished writes, from its
    `deliveries`: (status, error message, realtime payload). Pending again for another
    delivery, or failed for good once it was handed `max_deliveries` times."""
    deliveries = row["deliveries"]
    final = deliveries >= max_deliveries
    if final:
        message = f"interrupted {deliveries} times, last: {why}; not delivered again"
    else:
        message = f"interrupted: {why}; delivered again ({deliveries + 1} of {max_deliveries})"
    notice = {
        "machine_name": row["target_machine"],
        "event_id": row["id"],
        "event": row["event_type"],
        "deliveries": deliveries,
        "status": "failed" if final else "pending",
        "error": message,
    }
    return notice["status"], message, notice
