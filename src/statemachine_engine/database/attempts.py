"""Job history, written once for every dialect: one row per attempt of a job (started by
the claim, ended by the acknowledgement, a lapsed lease or a release, in the same
transactions), the actions that ran in it, and the timeline that reads them back."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from statemachine_engine.database.records import ActionRun, Job
from statemachine_engine.database.rows import job_from_row, machine_of
from statemachine_engine.database.tx import Connection, Row, Tx

#: What an attempt ended as; `running` while it has not.
OUTCOMES = ("running", "completed", "failed", "lease_lost", "cancelled")


def start_attempts(tx: Tx, claimed: Iterable[Row], owner: str, now: float) -> None:
    """Record the attempts a claim started (rows of `claim`, new values), inside the claim's
    transaction. A claim that took over a lapsed lease ends that attempt as `lease_lost`
    first. The rows are appended: nothing in the claim's transaction reads them."""
    rows = list(claimed)
    lapsed = [
        {"job_id": r["job_id"], "outcome": "lease_lost", "error": r["error_message"], "at": now}
        for r in rows
        if _took_over(r)
    ]
    end_attempts(tx, lapsed)
    worker = machine_of(owner)
    for row in rows:
        start = {"job_id": row["job_id"], "attempt": row["attempts"], "at": now}
        tx.append("attempt_insert_rows", {**start, "worker": worker, "owner": owner})


def _took_over(row: Row) -> bool:
    """Whether a claimed row was taken over from a lapsed lease: the claim wrote that as
    its error (a released job may still carry it, which costs only a no-op update)."""
    error = row.get("error_message") or ""
    return error.startswith("lease of ") and error.endswith(
        f" expired on attempt {row['attempts'] - 1}"
    )


def end_attempts(tx: Tx, ends: list[dict[str, Any]]) -> None:
    """End the running attempt of each job in `ends` ({job_id, outcome, error, at}) with one
    statement, inside the caller's transaction (a job has at most one running attempt)."""
    if ends:
        tx.run("attempts_end_rows", {"rows": json.dumps(ends, separators=(",", ":"))})


def end_attempt(tx: Tx, job_id: str, outcome: str, error: str | None, at: float) -> None:
    end_attempts(tx, [{"job_id": job_id, "outcome": outcome, "error": error, "at": at}])


def record_action(tx: Tx, run: ActionRun, machine: str) -> None:
    """Append one action of a held job's attempt (linked to the attempt's row)."""
    tx.append(
        "job_action_insert_rows",
        {
            "job_id": run.job_id,
            "attempt": run.attempt,
            "machine": machine,
            "state": run.state,
            "action": run.action,
            "command": run.command,
            "exit_code": run.exit_code,
            "stdout_tail": run.stdout_tail,
            "stderr_tail": run.stderr_tail,
            "started_at": run.started_at,
            "ended_at": run.ended_at,
        },
    )


@dataclass(frozen=True)
class AttemptRecord:
    """One attempt of a job with what it did: transitions, events sent, actions (rows)."""

    id: int
    attempt: int
    worker: str
    started_at: float
    ended_at: float | None
    outcome: str
    error: str | None
    transitions: list[Row] = field(default_factory=list)
    events_sent: list[Row] = field(default_factory=list)
    actions: list[Row] = field(default_factory=list)


@dataclass(frozen=True)
class JobTimeline:
    """A job and its attempts, oldest first."""

    job: Job
    attempts: list[AttemptRecord]


def _by_attempt(rows: list[Row]) -> dict[int, list[Row]]:
    out: dict[int, list[Row]] = {}
    for row in rows:
        out.setdefault(int(row["attempt_id"]), []).append(row)
    return out


class AttemptLog:
    """`job_timeline` of the Store contract."""

    conn: Connection

    def job_timeline(self, job_id: str) -> JobTimeline | None:
        """The job and every recorded attempt with its transitions, events sent and
        actions, in one read transaction; None for an unknown job."""

        def work(tx: Tx) -> JobTimeline | None:
            job = tx.query_one("job_get", {"job_id": job_id})
            if job is None:
                return None
            args = {"job_id": job_id}
            moves = _by_attempt(tx.query("attempt_transitions", args))
            sent = _by_attempt(tx.query("attempt_events_sent", args))
            ran = _by_attempt(tx.query("attempt_actions", args))
            attempts = [
                AttemptRecord(
                    id=row["id"],
                    attempt=row["attempt"],
                    worker=row["worker"],
                    started_at=row["started_at"],
                    ended_at=row["ended_at"],
                    outcome=row["outcome"],
                    error=row["error"],
                    transitions=moves.get(row["id"], []),
                    events_sent=sent.get(row["id"], []),
                    actions=ran.get(row["id"], []),
                )
                for row in tx.query("attempts_of_job", args)
            ]
            return JobTimeline(job_from_row(job), attempts)

        return self.conn.read(work)
