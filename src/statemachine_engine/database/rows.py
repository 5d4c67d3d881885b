"""Rows to records: one mapping shared by every store adapter."""

from __future__ import annotations

import dataclasses
from typing import Any

from statemachine_engine.database.codec import decode
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
    )


def machine_from_row(row: dict[str, Any]) -> MachineStatus:
    """A `machine_state` row as a MachineStatus; columns a domain schema added are ignored."""
    return MachineStatus(**{k: v for k, v in row.items() if k in _MACHINE_FIELDS})


def transition_from_row(row: dict[str, Any]) -> TransitionRecord:
    """A `transitions` row as a TransitionRecord."""
    return TransitionRecord(**{k: v for k, v in row.items() if k in _TRANSITION_FIELDS})
