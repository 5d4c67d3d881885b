"""The JSON of a job's timeline (`GET /api/jobs/{id}/timeline`): the job as `GET
/api/jobs/{id}` returns it and each attempt with its transitions, events sent and actions,
times as ISO-8601 UTC with milliseconds (clock.iso)."""

from __future__ import annotations

from typing import Any

from statemachine_engine.clock import iso
from statemachine_engine.database.attempts import AttemptRecord, JobTimeline
from statemachine_engine.database.tx import Row


def _iso(ts: float | None) -> str | None:
    return None if ts is None else iso(float(ts))


def _transition(row: Row) -> dict[str, Any]:
    return {
        "id": int(row["id"]),
        "machine": row["machine_name"],
        "from": row["from_state"],
        "to": row["to_state"],
        "event": row["event"],
        "at": _iso(row["created_at"]),
    }


def _event(row: Row) -> dict[str, Any]:
    return {
        "id": int(row["id"]),
        "target": row["target_machine"],
        "event": row["event_type"],
        "at": _iso(row["created_at"]),
    }


def _action(row: Row) -> dict[str, Any]:
    code = row["exit_code"]
    return {
        "state": row["state"],
        "action": row["action"],
        "command": row["command"],
        "exit_code": None if code is None else int(code),
        "stdout_tail": row["stdout_tail"] or "",
        "stderr_tail": row["stderr_tail"] or "",
        "started_at": _iso(row["started_at"]),
        "ended_at": _iso(row["ended_at"]),
    }


def _attempt(attempt: AttemptRecord) -> dict[str, Any]:
    return {
        "attempt": attempt.attempt,
        "worker": attempt.worker,
        "started_at": _iso(attempt.started_at),
        "ended_at": _iso(attempt.ended_at),
        "outcome": attempt.outcome,
        "error": attempt.error,
        "transitions": [_transition(r) for r in attempt.transitions],
        "events_sent": [_event(r) for r in attempt.events_sent],
        "actions": [_action(r) for r in attempt.actions],
    }


def timeline_view(timeline: JobTimeline) -> dict[str, Any]:
    """The response body of the job timeline endpoint."""
    return {
        "job": timeline.job.to_dict(),
        "attempts": [_attempt(a) for a in timeline.attempts],
    }
