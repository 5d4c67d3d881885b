"""The job queue on SQLite: enqueue, claim under a lease, heartbeat, acknowledge, inspect."""

from __future__ import annotations

import functools
import json
import uuid
from typing import Any

from statemachine_engine.clock import Clock
from statemachine_engine.database.codec import encode
from statemachine_engine.database.records import JOB_STATUSES, Claim, Job
from statemachine_engine.database.rows import (
    claimed_notice,
    failed_attempt,
    job_from_row,
    machine_of,
)
from statemachine_engine.database.sqlite.connection import Connection
from statemachine_engine.database.sqlite.stream import insert_realtime
from statemachine_engine.database.store import (
    DEFAULT_LEASE_SECONDS,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_PRIORITY,
)
from statemachine_engine.errors import DuplicateJobError, NotFoundError, StoreError
from statemachine_engine.names import check_name

# Two statements inside one write transaction (the write lock makes them atomic): pick the
# next runnable job through the partial indexes, then take it by rowid. Taking over an expired
# lease records it as that attempt's error, so a job whose workers keep dying shows one
# history entry per attempt.
_PICK = (
    "SELECT id FROM ("
    " SELECT * FROM (SELECT rowid AS id, priority, run_after, created_at FROM jobs"
    "  WHERE status = 'pending' AND run_after <= :now{filters}"
    "  ORDER BY priority, run_after, created_at, rowid LIMIT :limit)"
    " UNION ALL"
    " SELECT * FROM (SELECT rowid AS id, priority, run_after, created_at FROM jobs"
    "  WHERE status = 'processing' AND lease_expires_at < :now"
    "  AND attempts < max_attempts{filters}"
    "  ORDER BY priority, run_after, created_at, rowid LIMIT :limit))"
    " ORDER BY priority, run_after, created_at, id LIMIT :limit"
)
_TAKE = (
    "UPDATE jobs SET status = 'processing', lease_owner = :owner, lease_expires_at = :expires,"
    " attempts = attempts + 1, started_at = :now,"
    " error_message = CASE WHEN status = 'processing'"
    "  THEN 'lease of ' || lease_owner || ' expired on attempt ' || attempts"
    "  ELSE error_message END,"
    " errors = CASE WHEN status = 'processing'"
    "  THEN json_insert(errors, '$[#]',"
    "   'lease of ' || lease_owner || ' expired on attempt ' || attempts)"
    "  ELSE errors END"
    " WHERE rowid IN (SELECT value FROM json_each(:ids))"
    " RETURNING rowid AS id, *"
)
_RELEASE = (
    "UPDATE jobs SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL,"
    " attempts = MAX(attempts - 1, 0)"
    " WHERE job_id = ? AND lease_owner = ? AND status = 'processing'"
)
# Only these fixed fragments are added to the claim query (so each variant can use the partial
# indexes of migration 002); values are always parameters.
_CLAIM_FILTERS = {
    "job_id": " AND job_id = :job_id",
    "job_type": " AND job_type = :job_type",
    "machine_type": " AND (machine_type IS NULL OR machine_type = :machine_type)",
}


@functools.cache
def _pick_query(job_id: bool, job_type: bool, machine_type: bool) -> str:
    given = {"job_id": job_id, "job_type": job_type, "machine_type": machine_type}
    filters = "".join(_CLAIM_FILTERS[key] for key, used in given.items() if used)
    return _PICK.format(filters=filters)


_EXPIRE_EXHAUSTED = (
    "UPDATE jobs SET status = 'failed', completed_at = :now, lease_owner = NULL,"
    " lease_expires_at = NULL,"
    " error_message = 'lease of ' || lease_owner || ' expired on attempt ' || attempts,"
    " errors = json_insert(errors, '$[#]',"
    "  'lease of ' || lease_owner || ' expired on attempt ' || attempts)"
    " WHERE status = 'processing' AND lease_expires_at < :now AND attempts >= max_attempts"
    " RETURNING job_id, job_type, error_message"
)


def complete_held(c: Connection, job_id: str, owner: str, result: Any, now: float) -> bool:
    """Complete a job owner holds, inside the caller's transaction; False when fenced."""
    c.rows(
        "UPDATE jobs SET status = 'completed', completed_at = ?, result = ?,"
        " lease_owner = NULL, lease_expires_at = NULL"
        " WHERE job_id = ? AND lease_owner = ? AND status = 'processing'",
        (now, encode(result, what=f"result of job {job_id}"), job_id, owner),
    )
    if c.changes() != 1:
        return False
    insert_realtime(c, machine_of(owner), "job", {"job_id": job_id, "status": "completed"}, now)
    return True


def fail_held(
    c: Connection,
    job_id: str,
    owner: str,
    error: str,
    retry_delay: float | None,
    now: float,
) -> str | None:
    """Fail the attempt owner holds, inside the caller's transaction; None when fenced."""
    row = c.one(
        "SELECT attempts, max_attempts, errors FROM jobs"
        " WHERE job_id = ? AND lease_owner = ? AND status = 'processing'",
        (job_id, owner),
    )
    if row is None:
        return None
    status, errors, run_after, completed_at = failed_attempt(row, job_id, error, retry_delay, now)
    c.rows(
        "UPDATE jobs SET status = ?, error_message = ?, errors = ?, lease_owner = NULL,"
        " lease_expires_at = NULL, run_after = ?, completed_at = ? WHERE job_id = ?",
        (status, error, errors, run_after, completed_at, job_id),
    )
    insert_realtime(
        c, machine_of(owner), "job", {"job_id": job_id, "status": status, "error": error}, now
    )
    return status


def claim_next(c: Connection, claim: Claim, now: float) -> list[Job]:
    """Claim up to `claim.limit` runnable jobs (or the job `claim.job_id`) inside the caller's
    transaction, in claim order (a job whose last allowed attempt lost its lease is failed
    for good first)."""
    for expired in c.rows(_EXPIRE_EXHAUSTED, {"now": now}):
        insert_realtime(
            c,
            None,
            "job",
            {"job_id": expired["job_id"], "status": "failed", "error": expired["error_message"]},
            now,
        )
    query = _pick_query(
        claim.job_id is not None, claim.job_type is not None, claim.machine_type is not None
    )
    args = {
        "now": now,
        "job_id": claim.job_id,
        "job_type": claim.job_type,
        "machine_type": claim.machine_type,
        "limit": max(1, claim.limit),
    }
    picked = [row["id"] for row in c.rows(query, args)]
    if not picked:
        return []
    taken = {"ids": json.dumps(picked), "now": now, "owner": claim.owner}
    rows = {r["id"]: r for r in c.rows(_TAKE, {**taken, "expires": now + claim.lease_seconds})}
    jobs = []
    for rowid in picked:
        row = rows[rowid]
        insert_realtime(c, machine_of(claim.owner), "job", claimed_notice(row), now)
        jobs.append(job_from_row(row))
    return jobs


def release_held(c: Connection, job_id: str, owner: str, now: float) -> bool:
    """Give a job owner holds back to the queue, the attempt not counted, inside the caller's
    transaction; False when owner no longer holds it."""
    c.rows(_RELEASE, (job_id, owner))
    if c.changes() != 1:
        return False
    insert_realtime(c, machine_of(owner), "job", {"job_id": job_id, "status": "pending"}, now)
    return True


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
        if max_attempts < 1:
            raise StoreError("max_attempts must be at least 1")
        if job_id is not None:
            check_name(job_id, "job id")
        job_id = job_id or uuid.uuid4().hex[:12]
        now = self.clock.now()
        encoded = encode(data, what=f"data of job {job_id}")
        with self.conn.write() as c:
            existing = c.one("SELECT * FROM jobs WHERE job_id = ?", (job_id,))
            if existing is not None:
                if if_absent:
                    return job_from_row(existing)
                raise DuplicateJobError(job_id)
            # run_after is when the job became runnable, so claim order is first-come by
            # availability and a delayed or retried job is not overtaken forever.
            row = c.one(
                "INSERT INTO jobs (job_id, job_type, machine_type, data, priority, max_attempts,"
                " run_after, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
                (
                    job_id,
                    job_type,
                    machine_type,
                    encoded,
                    priority,
                    max_attempts,
                    now if run_after is None else run_after,
                    now,
                ),
            )
            assert row is not None
            insert_realtime(
                c, None, "job", {"job_id": job_id, "job_type": job_type, "status": "pending"}, now
            )
        return job_from_row(row)

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
        with self.conn.write() as c:
            jobs = claim_next(c, claim, self.clock.now())
        return jobs[0] if jobs else None

    def heartbeat(
        self, job_id: str, owner: str, lease_seconds: float, *, to: str | None = None
    ) -> bool:
        now = self.clock.now()
        with self.conn.write() as c:
            c.rows(
                "UPDATE jobs SET lease_expires_at = ?, lease_owner = ?"
                " WHERE job_id = ? AND lease_owner = ? AND status = 'processing'",
                (now + lease_seconds, to or owner, job_id, owner),
            )
            return c.changes() == 1

    def complete_job(self, job_id: str, owner: str, result: Any = None) -> bool:
        with self.conn.write() as c:
            return complete_held(c, job_id, owner, result, self.clock.now())

    def fail_job(
        self, job_id: str, owner: str, error: str, *, retry_delay: float | None = None
    ) -> str | None:
        with self.conn.write() as c:
            return fail_held(c, job_id, owner, error, retry_delay, self.clock.now())

    def release_job(self, job_id: str, owner: str) -> bool:
        with self.conn.write() as c:
            return release_held(c, job_id, owner, self.clock.now())

    def release_jobs(self, owner_prefix: str) -> int:
        with self.conn.write() as c:
            c.rows(
                "UPDATE jobs SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL,"
                " attempts = MAX(attempts - 1, 0)"
                " WHERE status = 'processing' AND substr(lease_owner, 1, ?) = ?",
                (len(owner_prefix), owner_prefix),
            )
            return c.changes()

    def get_job(self, job_id: str) -> Job | None:
        row = self.conn.one("SELECT * FROM jobs WHERE job_id = ?", (job_id,))
        return job_from_row(row) if row else None

    def list_jobs(
        self,
        *,
        status: str | None = None,
        job_type: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Job]:
        rows = self.conn.rows(
            "SELECT * FROM jobs WHERE (:status IS NULL OR status = :status)"
            " AND (:job_type IS NULL OR job_type = :job_type)"
            " ORDER BY created_at DESC, rowid DESC LIMIT :limit OFFSET :offset",
            {"status": status, "job_type": job_type, "limit": limit, "offset": offset},
        )
        return [job_from_row(r) for r in rows]

    def count_jobs(self, *, job_type: str | None = None) -> dict[str, int]:
        counts = dict.fromkeys(JOB_STATUSES, 0)
        rows = self.conn.rows(
            "SELECT status, COUNT(*) AS n FROM jobs"
            " WHERE (:job_type IS NULL OR job_type = :job_type) GROUP BY status",
            {"job_type": job_type},
        )
        for row in rows:
            counts[row["status"]] = row["n"]
        return counts

    def retry_job(self, job_id: str) -> Job:
        now = self.clock.now()
        with self.conn.write() as c:
            row = c.one(
                "UPDATE jobs SET status = 'pending', attempts = 0, run_after = ?,"
                " lease_owner = NULL, lease_expires_at = NULL, completed_at = NULL"
                " WHERE job_id = ? AND status IN ('failed', 'cancelled') RETURNING *",
                (now, job_id),
            )
            if row is None:
                raise _wrong_state(c, job_id, "retried", "failed or cancelled")
            insert_realtime(c, None, "job", {"job_id": job_id, "status": "pending"}, now)
        return job_from_row(row)

    def cancel_job(self, job_id: str) -> Job:
        now = self.clock.now()
        with self.conn.write() as c:
            row = c.one(
                "UPDATE jobs SET status = 'cancelled', completed_at = ?"
                " WHERE job_id = ? AND status = 'pending' RETURNING *",
                (now, job_id),
            )
            if row is None:
                raise _wrong_state(c, job_id, "cancelled", "pending")
            insert_realtime(c, None, "job", {"job_id": job_id, "status": "cancelled"}, now)
        return job_from_row(row)


def _wrong_state(c: Connection, job_id: str, verb: str, allowed: str) -> StoreError:
    row = c.one("SELECT status FROM jobs WHERE job_id = ?", (job_id,))
    if row is None:
        return NotFoundError(f"no job {job_id!r}")
    return StoreError(f"job {job_id!r} is {row['status']}; only {allowed} jobs can be {verb}")
