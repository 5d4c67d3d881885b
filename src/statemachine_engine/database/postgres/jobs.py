"""The job queue on PostgreSQL: claim with FOR UPDATE SKIP LOCKED (no double claim, no
worker waits for another), leases fenced by owner, a NOTIFY on the jobs channel whenever a
job becomes runnable, sent in the transaction that made it so."""

from __future__ import annotations

import json
import uuid
from typing import Any

from psycopg import sql

from statemachine_engine.clock import Clock
from statemachine_engine.database.codec import encode
from statemachine_engine.database.postgres.connection import Channels, Connection, Tx
from statemachine_engine.database.postgres.stream import insert_realtime
from statemachine_engine.database.records import JOB_STATUSES, Claim, Job
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
from statemachine_engine.errors import DuplicateJobError, NotFoundError, StoreError
from statemachine_engine.names import check_name

# Taking over an expired lease records it as that attempt's error; the message is appended
# to the JSON-array text in `errors` without re-encoding the rest.
_CLAIM_HEAD = (
    "WITH candidate AS ("
    " SELECT job_id FROM jobs"
    " WHERE status IN ('pending', 'processing')"
    "  AND ((status = 'pending' AND run_after <= %(now)s)"
    "   OR (status = 'processing' AND lease_expires_at < %(now)s AND attempts < max_attempts))"
)
_CLAIM_TAIL = (
    " ORDER BY priority, run_after, created_at, seq LIMIT %(limit)s"
    " FOR UPDATE SKIP LOCKED)"
    " UPDATE jobs j SET status = 'processing', lease_owner = %(owner)s,"
    " lease_expires_at = %(expires)s, attempts = j.attempts + 1, started_at = %(now)s,"
    " error_message = CASE WHEN j.status = 'processing'"
    "  THEN 'lease of ' || j.lease_owner || ' expired on attempt ' || j.attempts"
    "  ELSE j.error_message END,"
    " errors = CASE WHEN j.status = 'processing'"
    "  THEN left(j.errors, -1) || CASE WHEN j.errors = '[]' THEN '' ELSE ',' END"
    "   || to_json('lease of ' || j.lease_owner || ' expired on attempt ' || j.attempts)::text"
    "   || ']'"
    "  ELSE j.errors END"
    " FROM candidate WHERE j.job_id = candidate.job_id"
    " RETURNING j.*"
)
# Only these fixed fragments are added to the claim query; values are always parameters.
_CLAIM_FILTERS = {
    "job_id": " AND job_id = %(job_id)s",
    "job_type": " AND job_type = %(job_type)s",
    "machine_type": " AND (machine_type IS NULL OR machine_type = %(machine_type)s)",
}
_EXPIRE_EXHAUSTED = (
    "WITH expired AS ("
    " SELECT job_id FROM jobs WHERE status = 'processing' AND lease_expires_at < %(now)s"
    " AND attempts >= max_attempts FOR UPDATE SKIP LOCKED)"
    " UPDATE jobs j SET status = 'failed', completed_at = %(now)s, lease_owner = NULL,"
    " lease_expires_at = NULL,"
    " error_message = 'lease of ' || j.lease_owner || ' expired on attempt ' || j.attempts,"
    " errors = left(j.errors, -1) || CASE WHEN j.errors = '[]' THEN '' ELSE ',' END"
    "  || to_json('lease of ' || j.lease_owner || ' expired on attempt ' || j.attempts)::text"
    "  || ']'"
    " FROM expired WHERE j.job_id = expired.job_id"
    " RETURNING j.job_id, j.job_type, j.error_message"
)


def claim_query(job_id: str | None, job_type: str | None, machine_type: str | None) -> sql.SQL:
    """The claim statement with only the filters that are set (better plans than `x IS NULL
    OR ...`, which a generic prepared plan cannot use an index for)."""
    given = {"job_id": job_id, "job_type": job_type, "machine_type": machine_type}
    parts = [_CLAIM_HEAD, *(_CLAIM_FILTERS[k] for k, v in given.items() if v is not None)]
    return sql.SQL("").join(sql.SQL(p) for p in [*parts, _CLAIM_TAIL])  # type: ignore[return-value]


def announce_job(tx: Tx, channels: Channels, job_type: str) -> None:
    """Wake the workers of job_type when this transaction commits."""
    tx.notify(channels.jobs, json.dumps({"kind": "job", "job_type": job_type}))


def complete_held(
    tx: Tx, channels: Channels, job_id: str, owner: str, result: Any, now: float
) -> bool:
    """Complete a job owner holds, inside the caller's transaction; False when fenced."""
    tx.rows(
        "UPDATE jobs SET status = 'completed', completed_at = %s, result = %s,"
        " lease_owner = NULL, lease_expires_at = NULL"
        " WHERE job_id = %s AND lease_owner = %s AND status = 'processing'",
        (now, encode(result, what=f"result of job {job_id}"), job_id, owner),
    )
    if tx.changes() != 1:
        return False
    insert_realtime(
        tx, channels, machine_of(owner), "job", {"job_id": job_id, "status": "completed"}, now
    )
    return True


def fail_held(
    tx: Tx,
    channels: Channels,
    job_id: str,
    owner: str,
    error: str,
    retry_delay: float | None,
    now: float,
) -> str | None:
    """Fail the attempt owner holds, inside the caller's transaction; None when fenced."""
    row = tx.one(
        "SELECT job_type, attempts, max_attempts, errors FROM jobs"
        " WHERE job_id = %s AND lease_owner = %s AND status = 'processing' FOR UPDATE",
        (job_id, owner),
    )
    if row is None:
        return None
    status, errors, run_after, completed_at = failed_attempt(row, job_id, error, retry_delay, now)
    tx.rows(
        "UPDATE jobs SET status = %s, error_message = %s, errors = %s, lease_owner = NULL,"
        " lease_expires_at = NULL, run_after = %s, completed_at = %s WHERE job_id = %s",
        (status, error, errors, run_after, completed_at, job_id),
    )
    insert_realtime(
        tx,
        channels,
        machine_of(owner),
        "job",
        {"job_id": job_id, "status": status, "error": error},
        now,
    )
    if status == "pending":
        announce_job(tx, channels, row["job_type"])
    return status


def claim_next(tx: Tx, channels: Channels, claim: Claim, now: float) -> list[Job]:
    """Claim up to `claim.limit` runnable jobs (or the job `claim.job_id`) inside the caller's
    transaction, in claim order (a job whose last allowed attempt lost its lease is failed
    for good first)."""
    for row in tx.rows(_EXPIRE_EXHAUSTED, {"now": now}):
        insert_realtime(
            tx,
            channels,
            None,
            "job",
            {"job_id": row["job_id"], "status": "failed", "error": row["error_message"]},
            now,
            announce=False,
        )
    args = {
        "now": now,
        "owner": claim.owner,
        "expires": now + claim.lease_seconds,
        "job_id": claim.job_id,
        "job_type": claim.job_type,
        "machine_type": claim.machine_type,
        "limit": max(1, claim.limit),
    }
    rows = tx.rows(claim_query(claim.job_id, claim.job_type, claim.machine_type), args)
    rows.sort(key=lambda r: (r["priority"], r["run_after"], r["created_at"], r["seq"]))
    for row in rows:
        notice = claimed_notice(row)
        insert_realtime(tx, channels, machine_of(claim.owner), "job", notice, now, announce=False)
    return [job_from_row(row) for row in rows]


def release_held(tx: Tx, channels: Channels, job_id: str, owner: str, now: float) -> bool:
    """Give a job owner holds back to the queue, the attempt not counted, inside the caller's
    transaction, and wake its workers on commit; False when owner no longer holds it."""
    row = tx.one(
        "UPDATE jobs SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL,"
        " attempts = GREATEST(attempts - 1, 0)"
        " WHERE job_id = %s AND lease_owner = %s AND status = 'processing'"
        " RETURNING job_type",
        (job_id, owner),
    )
    if row is None:
        return False
    insert_realtime(
        tx, channels, machine_of(owner), "job", {"job_id": job_id, "status": "pending"}, now
    )
    announce_job(tx, channels, row["job_type"])
    return True


class JobQueue:
    """The job methods of the Store contract."""

    conn: Connection
    clock: Clock
    channels: Channels

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
        new_id = job_id or uuid.uuid4().hex[:12]
        now = self.clock.now()
        encoded = encode(data, what=f"data of job {new_id}")

        def work(tx: Tx) -> dict[str, Any]:
            row = tx.one(
                "INSERT INTO jobs (job_id, job_type, machine_type, data, priority, max_attempts,"
                " run_after, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (job_id) DO NOTHING RETURNING *",
                (
                    new_id,
                    job_type,
                    machine_type,
                    encoded,
                    priority,
                    max_attempts,
                    now if run_after is None else run_after,
                    now,
                ),
            )
            if row is None:
                existing = tx.one("SELECT * FROM jobs WHERE job_id = %s", (new_id,))
                if existing is not None and if_absent:
                    return dict(existing)
                raise DuplicateJobError(new_id)
            insert_realtime(
                tx,
                self.channels,
                None,
                "job",
                {"job_id": new_id, "job_type": job_type, "status": "pending"},
                now,
            )
            announce_job(tx, self.channels, job_type)
            return dict(row)

        return job_from_row(self.conn.write(work))

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
        jobs = self.conn.write(lambda tx: claim_next(tx, self.channels, claim, now))
        return jobs[0] if jobs else None

    def heartbeat(
        self, job_id: str, owner: str, lease_seconds: float, *, to: str | None = None
    ) -> bool:
        expires = self.clock.now() + lease_seconds

        def work(tx: Tx) -> bool:
            tx.rows(
                "UPDATE jobs SET lease_expires_at = %s, lease_owner = %s"
                " WHERE job_id = %s AND lease_owner = %s AND status = 'processing'",
                (expires, to or owner, job_id, owner),
            )
            return tx.changes() == 1

        return self.conn.write(work)

    def complete_job(self, job_id: str, owner: str, result: Any = None) -> bool:
        now = self.clock.now()
        return self.conn.write(
            lambda tx: complete_held(tx, self.channels, job_id, owner, result, now)
        )

    def fail_job(
        self, job_id: str, owner: str, error: str, *, retry_delay: float | None = None
    ) -> str | None:
        now = self.clock.now()
        return self.conn.write(
            lambda tx: fail_held(tx, self.channels, job_id, owner, error, retry_delay, now)
        )

    def release_job(self, job_id: str, owner: str) -> bool:
        now = self.clock.now()
        return self.conn.write(lambda tx: release_held(tx, self.channels, job_id, owner, now))

    def release_jobs(self, owner_prefix: str) -> int:
        def work(tx: Tx) -> int:
            rows = tx.rows(
                "UPDATE jobs SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL,"
                " attempts = GREATEST(attempts - 1, 0)"
                " WHERE status = 'processing' AND left(lease_owner, %s) = %s RETURNING job_type",
                (len(owner_prefix), owner_prefix),
            )
            for job_type in {r["job_type"] for r in rows}:
                announce_job(tx, self.channels, job_type)
            return len(rows)

        return self.conn.write(work)

    def get_job(self, job_id: str) -> Job | None:
        row = self.conn.read(lambda tx: tx.one("SELECT * FROM jobs WHERE job_id = %s", (job_id,)))
        return job_from_row(row) if row else None

    def list_jobs(
        self,
        *,
        status: str | None = None,
        job_type: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Job]:
        rows = self.conn.read(
            lambda tx: tx.rows(
                "SELECT * FROM jobs"
                " WHERE (%(status)s::text IS NULL OR status = %(status)s)"
                " AND (%(job_type)s::text IS NULL OR job_type = %(job_type)s)"
                " ORDER BY created_at DESC, seq DESC LIMIT %(limit)s OFFSET %(offset)s",
                {"status": status, "job_type": job_type, "limit": limit, "offset": offset},
            )
        )
        return [job_from_row(r) for r in rows]

    def count_jobs(self, *, job_type: str | None = None) -> dict[str, int]:
        counts = dict.fromkeys(JOB_STATUSES, 0)
        rows = self.conn.read(
            lambda tx: tx.rows(
                "SELECT status, COUNT(*) AS n FROM jobs"
                " WHERE (%(job_type)s::text IS NULL OR job_type = %(job_type)s) GROUP BY status",
                {"job_type": job_type},
            )
        )
        for row in rows:
            counts[row["status"]] = int(row["n"])
        return counts

    def retry_job(self, job_id: str) -> Job:
        now = self.clock.now()

        def work(tx: Tx) -> dict[str, Any]:
            row = tx.one(
                "UPDATE jobs SET status = 'pending', attempts = 0, run_after = %s,"
                " lease_owner = NULL, lease_expires_at = NULL, completed_at = NULL"
                " WHERE job_id = %s AND status IN ('failed', 'cancelled')"
                " RETURNING *",
                (now, job_id),
            )
            if row is None:
                raise _wrong_state(tx, job_id, "retried", "failed or cancelled")
            insert_realtime(
                tx, self.channels, None, "job", {"job_id": job_id, "status": "pending"}, now
            )
            announce_job(tx, self.channels, row["job_type"])
            return dict(row)

        return job_from_row(self.conn.write(work))

    def cancel_job(self, job_id: str) -> Job:
        now = self.clock.now()

        def work(tx: Tx) -> dict[str, Any]:
            row = tx.one(
                "UPDATE jobs SET status = 'cancelled', completed_at = %s"
                " WHERE job_id = %s AND status = 'pending' RETURNING *",
                (now, job_id),
            )
            if row is None:
                raise _wrong_state(tx, job_id, "cancelled", "pending")
            insert_realtime(
                tx, self.channels, None, "job", {"job_id": job_id, "status": "cancelled"}, now
            )
            return dict(row)

        return job_from_row(self.conn.write(work))


def _wrong_state(tx: Tx, job_id: str, verb: str, allowed: str) -> StoreError:
    row = tx.one("SELECT status FROM jobs WHERE job_id = %s", (job_id,))
    if row is None:
        return NotFoundError(f"no job {job_id!r}")
    return StoreError(f"job {job_id!r} is {row['status']}; only {allowed} jobs can be {verb}")
