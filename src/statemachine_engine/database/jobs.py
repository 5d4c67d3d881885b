"""The job queue, written once for every dialect: enqueue (one or many), claim under a
lease, heartbeat, acknowledge, inspect. Statements are named (database/queries.py); workers
are woken (Tx.wake_jobs) in the transaction that made a job runnable, after it commits."""

from __future__ import annotations

import json
import secrets
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from statemachine_engine.clock import Clock
from statemachine_engine.database.attempts import end_attempt, end_attempts, start_attempts
from statemachine_engine.database.codec import encode
from statemachine_engine.database.records import JOB_STATUSES, Claim, Job, NewJob
from statemachine_engine.database.rows import (
    claimed_notice,
    failed_attempt,
    job_from_row,
    machine_of,
)
from statemachine_engine.database.store import (
    DEFAULT_LEASE_SECONDS,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_PRIORITY,
)
from statemachine_engine.database.stream import insert_realtime, insert_realtime_many
from statemachine_engine.database.tx import Connection, Row, Tx
from statemachine_engine.errors import DuplicateJobError, NotFoundError, StoreError
from statemachine_engine.names import check_name

_CLAIM_ORDER = ("priority", "run_after", "created_at", "seq")


def complete_held(tx: Tx, job_id: str, owner: str, result: Any, now: float) -> bool:
    """Complete a job owner holds, inside the caller's transaction; False when fenced."""
    if job_id not in complete_held_many(tx, [(job_id, owner, result, now)]):
        return False
    insert_realtime(tx, machine_of(owner), "job", {"job_id": job_id, "status": "completed"}, now)
    return True


def complete_held_many(tx: Tx, held: list[tuple[str, str, Any, float]]) -> set[str]:
    """Complete the jobs of `held` (job id, owner, result, time) their owners still hold, with one
    statement, inside the caller's transaction; the ids completed (the others are fenced).
    The caller adds their stream rows."""
    if not held:
        return set()
    rows = [
        {
            "job_id": job_id,
            "owner": owner,
            "result": encode(result, what=f"result of job {job_id}"),
            "now": at,
        }
        for job_id, owner, result, at in held
    ]
    done = tx.query("jobs_complete_rows", {"rows": json.dumps(rows, separators=(",", ":"))})
    completed = {row["job_id"] for row in done}
    ends = [
        {"job_id": job_id, "outcome": "completed", "error": None, "at": at}
        for job_id, _, _, at in held
        if job_id in completed
    ]
    end_attempts(tx, ends)
    return completed


def fail_held(
    tx: Tx, job_id: str, owner: str, error: str, retry_delay: float | None, now: float
) -> str | None:
    """Fail the attempt owner holds, inside the caller's transaction; None when fenced."""
    row = tx.query_one("job_attempt", {"job_id": job_id, "owner": owner})
    if row is None:
        return None
    status, errors, run_after, completed_at = failed_attempt(row, job_id, error, retry_delay, now)
    tx.run(
        "job_end_attempt",
        {
            "status": status,
            "error": error,
            "errors": errors,
            "run_after": run_after,
            "completed_at": completed_at,
            "job_id": job_id,
        },
    )
    end_attempt(tx, job_id, "failed", error, now)
    insert_realtime(
        tx, machine_of(owner), "job", {"job_id": job_id, "status": status, "error": error}, now
    )
    if status == "pending":
        tx.wake_jobs(row["job_type"])
    return status


def _claim_args(claim: Claim, now: float) -> tuple[str, dict[str, Any]]:
    """The claim's statement variant (only the filters that are set) and its parameters."""
    filters = {
        "job_id": claim.job_id,
        "job_type": claim.job_type,
        "machine_type": claim.machine_type,
    }
    variant = "".join(f"+{key}" for key, value in filters.items() if value is not None)
    args = {
        **filters,
        "now": now,
        "owner": claim.owner,
        "expires": now + claim.lease_seconds,
        "limit": max(1, claim.limit),
    }
    return variant, args


def claimable(tx: Tx, claim: Claim, now: float) -> bool:
    """Whether `claim` could take a job (or must fail a lapsed one) now; a read."""
    variant, args = _claim_args(claim, now)
    return tx.query_one("claim_probe" + variant, args) is not None


def claim_next(tx: Tx, claim: Claim, now: float) -> list[Job]:
    """Claim up to `claim.limit` runnable jobs (or the job `claim.job_id`) inside the caller's
    transaction, in claim order (a job whose last allowed attempt lost its lease is failed
    for good first). Claims do not announce their realtime rows: they reach readers with the
    next announcement, typically the step that follows at once."""
    expired = tx.query("job_expire_exhausted", {"now": now})
    for row in expired:
        notice = {"job_id": row["job_id"], "status": "failed", "error": row["error_message"]}
        insert_realtime(tx, None, "job", notice, now, announce=False)
    lapsed = [
        {"job_id": r["job_id"], "outcome": "lease_lost", "error": r["error_message"], "at": now}
        for r in expired
    ]
    end_attempts(tx, lapsed)
    variant, args = _claim_args(claim, now)
    rows = tx.query("claim" + variant, args)
    rows.sort(key=lambda r: tuple(r[k] for k in _CLAIM_ORDER))
    start_attempts(tx, rows, claim.owner, now)
    owner = machine_of(claim.owner)
    for row in rows:
        insert_realtime(tx, owner, "job", claimed_notice(row), now, announce=False)
    return [job_from_row(row) for row in rows]


def release_held(tx: Tx, job_id: str, owner: str, now: float) -> bool:
    """Give a job owner holds back to the queue, the attempt not counted, inside the caller's
    transaction, and wake its workers on commit; False when owner no longer holds it."""
    row = tx.query_one("job_release", {"job_id": job_id, "owner": owner})
    if row is None:
        return False
    end_attempt(tx, job_id, "cancelled", f"released by {owner} (not counted)", now)
    insert_realtime(tx, machine_of(owner), "job", {"job_id": job_id, "status": "pending"}, now)
    tx.wake_jobs(row["job_type"])
    return True


def new_job_row(job: NewJob, now: float) -> Row:
    """The columns of a job to insert (its id made up when not given), data encoded."""
    if job.max_attempts < 1:
        raise StoreError("max_attempts must be at least 1")
    if job.job_id is not None:
        check_name(job.job_id, "job id")
    job_id = job.job_id or secrets.token_hex(6)  # 12 hex digits, as uuid4().hex[:12]
    return {
        "job_id": job_id,
        "job_type": job.job_type,
        "machine_type": job.machine_type,
        "data": encode(job.data, what=f"data of job {job_id}"),
        "priority": job.priority,
        "max_attempts": job.max_attempts,
        "run_after": now if job.run_after is None else job.run_after,
        "created_at": now,
    }


def _first_of_each(rows: list[Row], added: set[str]) -> list[Row]:
    """The rows an insert kept: those whose id it returned, the first of repeated ids."""
    kept = []
    for row in rows:
        if row["job_id"] in added:
            added.discard(row["job_id"])
            kept.append(row)
    return kept


def added_notice(row: Row) -> dict[str, Any]:
    return {"job_id": row["job_id"], "job_type": row["job_type"], "status": "pending"}


class JobQueue:
    """The job methods of the Store contract."""

    conn: Connection
    clock: Clock

    def add_job(
        self,
        job_type: str,
        data: Any = None,
        *,
        job_id: str | None = None,
        machine_type: str | None = None,
        priority: int = DEFAULT_PRIORITY,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        run_after: float | None = None,
        if_absent: bool = False,
    ) -> Job:
        new = NewJob(job_type, data, job_id, machine_type, priority, max_attempts, run_after)
        now = self.clock.now()
        values = new_job_row(new, now)

        def work(tx: Tx) -> Row:
            row = tx.query_one("job_insert", values)
            if row is None:
                existing = tx.query_one("job_get", values)
                if existing is not None and if_absent:
                    return existing
                raise DuplicateJobError(values["job_id"])
            insert_realtime(tx, None, "job", added_notice(values), now)
            tx.wake_jobs(job_type)
            return row

        return job_from_row(self.conn.write(work))

    def add_jobs(self, jobs: Iterable[NewJob], *, if_absent: bool = False) -> list[str]:
        """Enqueue many jobs in one transaction and wake their workers once; the ids of the
        jobs added, in order. An id that exists already (in the store or earlier in `jobs`)
        raises DuplicateJobError and nothing is added, unless if_absent (it is skipped)."""
        now = self.clock.now()
        rows = [new_job_row(job, now) for job in jobs]
        if not rows:
            return []

        def work(tx: Tx) -> list[str]:
            added = {r["job_id"] for r in tx.query("jobs_insert_many", {"jobs": json.dumps(rows)})}
            inserted = _first_of_each(rows, added)
            if len(inserted) != len(rows) and not if_absent:
                taken = Counter(r["job_id"] for r in rows) - Counter(r["job_id"] for r in inserted)
                raise DuplicateJobError(next(iter(taken)))
            insert_realtime_many(tx, None, "job", [added_notice(r) for r in inserted], now)
            for job_type in dict.fromkeys(r["job_type"] for r in inserted):
                tx.wake_jobs(job_type)
            return [r["job_id"] for r in inserted]

        return self.conn.write(work)

    def claim_job(
        self,
        job_type: str | None,
        owner: str,
        *,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        machine_type: str | None = None,
        job_id: str | None = None,
    ) -> Job | None:
        claim = Claim(job_type, owner, lease_seconds, machine_type, job_id)
        now = self.clock.now()
        jobs = self.conn.write(lambda tx: claim_next(tx, claim, now))
        return jobs[0] if jobs else None

    def heartbeat(
        self, job_id: str, owner: str, lease_seconds: float, *, to: str | None = None
    ) -> bool:
        args = {
            "expires": self.clock.now() + lease_seconds,
            "new_owner": to or owner,
            "job_id": job_id,
            "owner": owner,
        }

        def work(tx: Tx) -> bool:
            tx.run("job_heartbeat", args)
            held = tx.changes() == 1
            if held and to is not None and to != owner:
                tx.run("attempt_hand_over", {"job_id": job_id, "owner": to})
            return held

        return self.conn.write(work)

    def complete_job(self, job_id: str, owner: str, result: Any = None) -> bool:
        now = self.clock.now()
        return self.conn.write(lambda tx: complete_held(tx, job_id, owner, result, now))

    def fail_job(
        self, job_id: str, owner: str, error: str, *, retry_delay: float | None = None
    ) -> str | None:
        now = self.clock.now()
        return self.conn.write(lambda tx: fail_held(tx, job_id, owner, error, retry_delay, now))

    def release_job(self, job_id: str, owner: str) -> bool:
        now = self.clock.now()
        return self.conn.write(lambda tx: release_held(tx, job_id, owner, now))

    def release_jobs(self, owner_prefix: str) -> int:
        now = self.clock.now()
        error = f"released by {owner_prefix}* (not counted)"

        def work(tx: Tx) -> int:
            rows = tx.query("jobs_release_owned", {"prefix": owner_prefix})
            ends = [
                {"job_id": r["job_id"], "outcome": "cancelled", "error": error, "at": now}
                for r in rows
            ]
            end_attempts(tx, ends)
            for job_type in dict.fromkeys(r["job_type"] for r in rows):
                tx.wake_jobs(job_type)
            return len(rows)

        return self.conn.write(work)

    def get_job(self, job_id: str) -> Job | None:
        row = self.conn.read(lambda tx: tx.query_one("job_get", {"job_id": job_id}))
        return job_from_row(row) if row else None

    def list_jobs(
        self,
        *,
        status: str | None = None,
        job_type: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Job]:
        args = {"status": status, "job_type": job_type, "limit": limit, "offset": offset}
        return [job_from_row(r) for r in self.conn.read(lambda tx: tx.query("jobs_list", args))]

    def count_jobs(self, *, job_type: str | None = None) -> dict[str, int]:
        counts = dict.fromkeys(JOB_STATUSES, 0)
        rows = self.conn.read(lambda tx: tx.query("jobs_count", {"job_type": job_type}))
        for row in rows:
            counts[row["status"]] = int(row["n"])
        return counts

    def failed_jobs(self, limit: int = 100) -> list[Job]:
        """Failed jobs, most recently failed first (a partial index, migration 009)."""
        rows = self.conn.read(lambda tx: tx.query("jobs_failed", {"limit": limit}))
        return [job_from_row(r) for r in rows]

    def delayed_jobs(self, limit: int = 100) -> list[Job]:
        """Pending jobs that may not run before a later time (retry delays, `run_after`),
        soonest first."""
        args = {"now": self.clock.now(), "limit": limit}
        return [job_from_row(r) for r in self.conn.read(lambda tx: tx.query("jobs_delayed", args))]

    def overdue_leases(self) -> list[tuple[str, str, float]]:
        """(job id, lease owner, lease expiry) of processing jobs held past their lease."""
        args = {"now": self.clock.now()}
        rows = self.conn.read(lambda tx: tx.query("jobs_overdue", args))
        return [(r["job_id"], r["lease_owner"], float(r["lease_expires_at"])) for r in rows]

    def retry_job(self, job_id: str) -> Job:
        return self.retry_jobs([job_id])[0]

    def cancel_job(self, job_id: str) -> Job:
        return self.cancel_jobs([job_id])[0]

    def retry_jobs(
        self, job_ids: Sequence[str], *, data: Mapping[str, Any] | None = None
    ) -> list[Job]:
        """Put failed or cancelled jobs back in the queue, all or none; `data` maps a job id
        to the data it runs with from now on (edit, then retry)."""
        new_data = {
            job_id: encode(value, what=f"data of job {job_id}")
            for job_id, value in (data or {}).items()
        }
        unknown = sorted(set(new_data) - set(job_ids))
        if unknown:
            raise StoreError(f"data given for job {unknown[0]!r}, which is not being retried")
        return self._change(job_ids, "retried", "failed or cancelled", "pending", new_data)

    def cancel_jobs(self, job_ids: Sequence[str]) -> list[Job]:
        """Cancel pending jobs, all or none."""
        return self._change(job_ids, "cancelled", "pending", "cancelled", {})

    def _change(
        self,
        job_ids: Sequence[str],
        verb: str,
        allowed: str,
        status: str,
        new_data: Mapping[str, str],
    ) -> list[Job]:
        """An operator's change of jobs' status (retry, cancel) in one transaction, or a
        clear refusal naming the first job that cannot change (then nothing changes)."""
        now = self.clock.now()
        if len(set(job_ids)) != len(job_ids):
            twice = next(j for j in job_ids if list(job_ids).count(j) > 1)
            raise StoreError(f"job {twice!r} is listed twice")

        def work(tx: Tx) -> list[Row]:
            rows: list[Row] = []
            for job_id in job_ids:
                args: dict[str, Any] = {"now": now, "job_id": job_id}
                if status == "cancelled":
                    statement = "job_cancel"
                elif job_id in new_data:
                    statement, args["data"] = "job_retry_data", new_data[job_id]
                else:
                    statement = "job_retry"
                row = tx.query_one(statement, args)
                if row is None:
                    raise _wrong_state(tx, job_id, verb, allowed)
                insert_realtime(tx, None, "job", {"job_id": job_id, "status": status}, now)
                if status == "pending":
                    tx.wake_jobs(row["job_type"])
                rows.append(row)
            return rows

        return [job_from_row(row) for row in self.conn.write(work)]


def _wrong_state(tx: Tx, job_id: str, verb: str, allowed: str) -> StoreError:
    row = tx.query_one("job_get", {"job_id": job_id})
    if row is None:
        return NotFoundError(f"no job {job_id!r}")
    return StoreError(f"job {job_id!r} is {row['status']}; only {allowed} jobs can be {verb}")
