"""The store on SQLite: one connection per process, every write in BEGIN IMMEDIATE."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from statemachine_engine.clock import Clock, SystemClock
from statemachine_engine.database.codec import decode, encode
from statemachine_engine.database.migrations import builtin_migrations, directory_migrations
from statemachine_engine.database.records import (
    JOB_STATUSES,
    Job,
    MachineEvent,
    MachineStatus,
    RealtimeEvent,
    Step,
    TransitionRecord,
)
from statemachine_engine.database.sqlite.connection import Connection
from statemachine_engine.database.store import (
    DEFAULT_LEASE_SECONDS,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_PRIORITY,
)
from statemachine_engine.errors import DuplicateJobError, NotFoundError, StoreError

_RUNNABLE = (
    "(status = 'pending' AND run_after <= :now)"
    " OR (status = 'processing' AND lease_expires_at < :now AND attempts < max_attempts)"
)


def _job(row: dict[str, Any]) -> Job:
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


def _event(row: dict[str, Any]) -> MachineEvent:
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


def _machine(row: dict[str, Any]) -> MachineStatus:
    return MachineStatus(**row)


class SQLiteStore:
    """Store implementation on one SQLite file (see database.store.Store for the contract)."""

    def __init__(
        self,
        path: str,
        *,
        schema_dirs: Sequence[str | Path] = (),
        clock: Clock | None = None,
        url: str | None = None,
    ) -> None:
        migrations = builtin_migrations("sqlite")
        for directory in schema_dirs:
            migrations.extend(directory_migrations(directory))
        self.path = path
        self.url = url or f"sqlite:///{path}"
        self.clock: Clock = clock or SystemClock()
        self.conn = Connection(path, migrations)

    def close(self) -> None:
        self.conn.close()

    # jobs

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
        job_id = job_id or uuid.uuid4().hex[:12]
        now = self.clock.now()
        encoded = encode(data, what=f"data of job {job_id}")
        with self.conn.write() as c:
            existing = c.one("SELECT * FROM jobs WHERE job_id = ?", (job_id,))
            if existing is not None:
                if if_absent:
                    return _job(existing)
                raise DuplicateJobError(job_id)
            row = c.one(
                "INSERT INTO jobs (job_id, job_type, machine_type, data, priority, max_attempts,"
                " run_after, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
                (job_id, job_type, machine_type, encoded, priority, max_attempts,
                 run_after or 0.0, now),
            )
            assert row is not None
            self._realtime(c, None, "job", {"job_id": job_id, "job_type": job_type,
                                            "status": "pending"}, now)
        return _job(row)

    def claim_job(
        self,
        job_type: str | None,
        owner: str,
        *,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        machine_type: str | None = None,
        job_id: str | None = None,
    ) -> Job | None:
        now = self.clock.now()
        where = [f"({_RUNNABLE})"]
        args: dict[str, Any] = {"now": now, "owner": owner, "expires": now + lease_seconds}
        if job_id is not None:
            where.append("job_id = :job_id")
            args["job_id"] = job_id
        if job_type is not None:
            where.append("job_type = :job_type")
            args["job_type"] = job_type
        if machine_type is not None:
            where.append("(machine_type IS NULL OR machine_type = :machine_type)")
            args["machine_type"] = machine_type
        with self.conn.write() as c:
            self._expire_exhausted(c, now)
            row = c.one(
                "UPDATE jobs SET status = 'processing', lease_owner = :owner,"
                " lease_expires_at = :expires, attempts = attempts + 1, started_at = :now"
                " WHERE job_id = (SELECT job_id FROM jobs WHERE "
                + " AND ".join(where)
                + " ORDER BY priority, run_after, created_at LIMIT 1) RETURNING *",
                args,
            )
            if row is None:
                return None
            self._realtime(c, owner.split("@")[0], "job",
                           {"job_id": row["job_id"], "job_type": row["job_type"],
                            "status": "processing", "attempt": row["attempts"]}, now)
        return _job(row)

    def _expire_exhausted(self, c: Connection, now: float) -> None:
        """A job whose last allowed attempt lost its lease is failed for good."""
        c.rows(
            "UPDATE jobs SET status = 'failed', lease_owner = NULL, completed_at = ?,"
            " error_message = 'lease expired on the last attempt' WHERE status = 'processing'"
            " AND lease_expires_at < ? AND attempts >= max_attempts",
            (now, now),
        )

    def heartbeat(self, job_id: str, owner: str, lease_seconds: float) -> bool:
        now = self.clock.now()
        with self.conn.write() as c:
            c.rows(
                "UPDATE jobs SET lease_expires_at = ? WHERE job_id = ? AND lease_owner = ?"
                " AND status = 'processing'",
                (now + lease_seconds, job_id, owner),
            )
            return c.changes() == 1

    def complete_job(self, job_id: str, owner: str, result: Any = None) -> bool:
        with self.conn.write() as c:
            return self._complete(c, job_id, owner, result, self.clock.now())

    def _complete(self, c: Connection, job_id: str, owner: str, result: Any, now: float) -> bool:
        c.rows(
            "UPDATE jobs SET status = 'completed', completed_at = ?, result = ?,"
            " lease_owner = NULL, lease_expires_at = NULL"
            " WHERE job_id = ? AND lease_owner = ? AND status = 'processing'",
            (now, encode(result, what="job result"), job_id, owner),
        )
        if c.changes() != 1:
            return False
        self._realtime(c, owner.split("@")[0], "job",
                       {"job_id": job_id, "status": "completed"}, now)
        return True

    def fail_job(
        self, job_id: str, owner: str, error: str, *, retry_delay: float | None = None
    ) -> str | None:
        with self.conn.write() as c:
            return self._fail(c, job_id, owner, error, retry_delay, self.clock.now())

    def _fail(
        self, c: Connection, job_id: str, owner: str, error: str,
        retry_delay: float | None, now: float,
    ) -> str | None:
        row = c.one(
            "SELECT attempts, max_attempts, errors FROM jobs WHERE job_id = ?"
            " AND lease_owner = ? AND status = 'processing'",
            (job_id, owner),
        )
        if row is None:
            return None
        errors = [*decode(row["errors"]), error]
        final = retry_delay is None or row["attempts"] >= row["max_attempts"]
        status = "failed" if final else "pending"
        c.rows(
            "UPDATE jobs SET status = ?, error_message = ?, errors = ?, lease_owner = NULL,"
            " lease_expires_at = NULL, run_after = ?, completed_at = ? WHERE job_id = ?",
            (status, error, encode(errors), now + (retry_delay or 0.0),
             now if final else None, job_id),
        )
        self._realtime(c, owner.split("@")[0], "job",
                       {"job_id": job_id, "status": status, "error": error}, now)
        return status

    def release_job(self, job_id: str, owner: str) -> bool:
        with self.conn.write() as c:
            c.rows(
                "UPDATE jobs SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL,"
                " attempts = MAX(attempts - 1, 0) WHERE job_id = ? AND lease_owner = ?"
                " AND status = 'processing'",
                (job_id, owner),
            )
            return c.changes() == 1

    def release_jobs(self, owner_prefix: str) -> int:
        with self.conn.write() as c:
            c.rows(
                "UPDATE jobs SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL,"
                " attempts = MAX(attempts - 1, 0) WHERE status = 'processing'"
                " AND substr(lease_owner, 1, ?) = ?",
                (len(owner_prefix), owner_prefix),
            )
            return c.changes()

    def get_job(self, job_id: str) -> Job | None:
        row = self.conn.one("SELECT * FROM jobs WHERE job_id = ?", (job_id,))
        return _job(row) if row else None

    def list_jobs(
        self,
        *,
        status: str | None = None,
        job_type: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Job]:
        where, args = ["1 = 1"], []
        if status is not None:
            where.append("status = ?")
            args.append(status)
        if job_type is not None:
            where.append("job_type = ?")
            args.append(job_type)
        rows = self.conn.rows(
            "SELECT * FROM jobs WHERE " + " AND ".join(where)
            + " ORDER BY created_at DESC, job_id LIMIT ? OFFSET ?",
            (*args, limit, offset),
        )
        return [_job(r) for r in rows]

    def count_jobs(self, *, job_type: str | None = None) -> dict[str, int]:
        counts = dict.fromkeys(JOB_STATUSES, 0)
        sql = "SELECT status, COUNT(*) AS n FROM jobs"
        args: tuple[Any, ...] = ()
        if job_type is not None:
            sql += " WHERE job_type = ?"
            args = (job_type,)
        for row in self.conn.rows(sql + " GROUP BY status", args):
            counts[row["status"]] = row["n"]
        return counts

    def retry_job(self, job_id: str) -> Job:
        with self.conn.write() as c:
            row = c.one(
                "UPDATE jobs SET status = 'pending', attempts = 0, run_after = 0,"
                " lease_owner = NULL, lease_expires_at = NULL, completed_at = NULL"
                " WHERE job_id = ? AND status IN ('failed', 'cancelled') RETURNING *",
                (job_id,),
            )
            if row is None:
                self._explain_state(c, job_id, "retried", "failed or cancelled")
            assert row is not None
            self._realtime(c, None, "job", {"job_id": job_id, "status": "pending"},
                           self.clock.now())
        return _job(row)

    def cancel_job(self, job_id: str) -> Job:
        with self.conn.write() as c:
            row = c.one(
                "UPDATE jobs SET status = 'cancelled', completed_at = ? WHERE job_id = ?"
                " AND status = 'pending' RETURNING *",
                (self.clock.now(), job_id),
            )
            if row is None:
                self._explain_state(c, job_id, "cancelled", "pending")
            assert row is not None
            self._realtime(c, None, "job", {"job_id": job_id, "status": "cancelled"},
                           self.clock.now())
        return _job(row)

    def _explain_state(self, c: Connection, job_id: str, verb: str, allowed: str) -> None:
        row = c.one("SELECT status FROM jobs WHERE job_id = ?", (job_id,))
        if row is None:
            raise NotFoundError(f"no job {job_id!r}")
        raise StoreError(f"job {job_id!r} is {row['status']}; only {allowed} jobs can be {verb}")

    # events between machines

    def send_event(
        self,
        target: str,
        event_type: str,
        payload: Any = None,
        *,
        source: str | None = None,
        job_id: str | None = None,
    ) -> MachineEvent:
        now = self.clock.now()
        with self.conn.write() as c:
            row = self._insert_event(c, target, event_type, payload, source, job_id, now)
        return _event(row)

    def _insert_event(
        self, c: Connection, target: str, event_type: str, payload: Any,
        source: str | None, job_id: str | None, now: float,
    ) -> dict[str, Any]:
        row = c.one(
            "INSERT INTO machine_events (target_machine, source_machine, event_type, job_id,"
            " payload, created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING *",
            (target, source, event_type, job_id,
             encode(payload, what=f"payload of event {event_type!r}"), now),
        )
        assert row is not None
        self._realtime(c, source, "event_sent",
                       {"id": row["id"], "source": source, "target": target,
                        "event_type": event_type, "job_id": job_id}, now)
        return row

    def next_event(self, target: str) -> MachineEvent | None:
        row = self.conn.one(
            "SELECT * FROM machine_events WHERE target_machine = ? AND status = 'pending'"
            " ORDER BY id LIMIT 1",
            (target,),
        )
        return _event(row) if row else None

    def mark_event(self, event_id: int, status: str) -> bool:
        with self.conn.write() as c:
            c.rows(
                "UPDATE machine_events SET status = ?, processed_at = ? WHERE id = ?"
                " AND status = 'pending'",
                (status, self.clock.now(), event_id),
            )
            return c.changes() == 1

    def list_events(
        self, *, target: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[MachineEvent]:
        where, args = ["1 = 1"], []
        if target is not None:
            where.append("target_machine = ?")
            args.append(target)
        if status is not None:
            where.append("status = ?")
            args.append(status)
        rows = self.conn.rows(
            "SELECT * FROM machine_events WHERE " + " AND ".join(where)
            + " ORDER BY id DESC LIMIT ?",
            (*args, limit),
        )
        return [_event(r) for r in rows]

    def clear_events(self, target: str) -> int:
        with self.conn.write() as c:
            c.rows(
                "UPDATE machine_events SET status = 'processed', processed_at = ?"
                " WHERE target_machine = ? AND status = 'pending'",
                (self.clock.now(), target),
            )
            return c.changes()

    # machines

    def register_machine(
        self,
        name: str,
        state: str,
        *,
        pid: int,
        hostname: str,
        config_path: str,
        definition_name: str,
        definition_hash: str,
        definition_text: str,
        at: float,
    ) -> MachineStatus:
        with self.conn.write() as c:
            c.rows(
                "INSERT OR IGNORE INTO machine_definitions (digest, name, source, text,"
                " created_at) VALUES (?, ?, ?, ?, ?)",
                (definition_hash, definition_name, config_path, definition_text, at),
            )
            row = c.one(
                "INSERT INTO machine_state (machine_name, current_state, state_entered_at,"
                " status, pid, hostname, config_path, definition_name, definition_hash,"
                " started_at, updated_at, previous_state, last_event, current_job_id)"
                " VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL)"
                " ON CONFLICT (machine_name) DO UPDATE SET current_state = excluded.current_state,"
                " state_entered_at = excluded.state_entered_at, status = 'running',"
                " pid = excluded.pid, hostname = excluded.hostname,"
                " config_path = excluded.config_path,"
                " definition_name = excluded.definition_name,"
                " definition_hash = excluded.definition_hash, started_at = excluded.started_at,"
                " updated_at = excluded.updated_at, previous_state = NULL, last_event = NULL,"
                " current_job_id = NULL RETURNING *",
                (name, state, at, pid, hostname, config_path, definition_name,
                 definition_hash, at, at),
            )
            assert row is not None
            self._realtime(c, name, "machine_started",
                           {"machine_name": name, "state": state, "pid": pid,
                            "definition_hash": definition_hash}, at)
        return _machine(row)

    def machine_stopped(self, name: str, status: str, at: float) -> None:
        with self.conn.write() as c:
            c.rows(
                "UPDATE machine_state SET status = ?, updated_at = ?, current_job_id = NULL"
                " WHERE machine_name = ?",
                (status, at, name),
            )
            self._realtime(c, name, "machine_stopped", {"machine_name": name,
                                                        "status": status}, at)

    def get_machine(self, name: str) -> MachineStatus | None:
        row = self.conn.one("SELECT * FROM machine_state WHERE machine_name = ?", (name,))
        return _machine(row) if row else None

    def list_machines(self) -> list[MachineStatus]:
        return [_machine(r) for r in
                self.conn.rows("SELECT * FROM machine_state ORDER BY machine_name")]

    def get_definition(self, digest: str) -> dict[str, Any] | None:
        return self.conn.one("SELECT * FROM machine_definitions WHERE digest = ?", (digest,))

    def history(self, *, machine: str | None = None, limit: int = 100) -> list[TransitionRecord]:
        if machine is None:
            rows = self.conn.rows("SELECT * FROM transitions ORDER BY id DESC LIMIT ?", (limit,))
        else:
            rows = self.conn.rows(
                "SELECT * FROM transitions WHERE machine_name = ? ORDER BY id DESC LIMIT ?",
                (machine, limit),
            )
        return [TransitionRecord(**r) for r in rows]

    def commit_step(self, step: Step) -> bool:
        with self.conn.write() as c:
            acked = self._ack(c, step)
            if acked:
                for out in step.outbox:
                    self._insert_event(c, out.target_machine, out.event_type, out.payload,
                                       step.machine_name, out.job_id, step.at)
            if step.consumed_event_id is not None:
                c.rows(
                    "UPDATE machine_events SET status = ?, processed_at = ? WHERE id = ?",
                    (step.consumed_event_status, step.at, step.consumed_event_id),
                )
            if step.to_state is not None:
                self._record_transition(c, step)
            for kind, payload in step.realtime:
                self._realtime(c, step.machine_name, kind, payload, step.at)
        return acked

    def _ack(self, c: Connection, step: Step) -> bool:
        ack = step.job_ack
        if ack is None:
            return True
        if ack.outcome == "completed":
            return self._complete(c, ack.job_id, ack.owner, ack.result, step.at)
        status = self._fail(c, ack.job_id, ack.owner, ack.error or "error",
                            ack.retry_delay, step.at)
        return status is not None

    def _record_transition(self, c: Connection, step: Step) -> None:
        assert step.to_state is not None
        changed = step.from_state != step.to_state
        c.rows(
            "UPDATE machine_state SET current_state = ?, previous_state = ?, last_event = ?,"
            " step = ?, updated_at = ?, current_job_id = ?,"
            " state_entered_at = CASE WHEN ? THEN ? ELSE state_entered_at END"
            " WHERE machine_name = ?",
            (step.to_state, step.from_state, step.event, step.step, step.at, step.job_id,
             changed, step.at, step.machine_name),
        )
        c.rows(
            "INSERT INTO transitions (machine_name, step, from_state, to_state, event, job_id,"
            " event_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (step.machine_name, step.step, step.from_state, step.to_state, step.event,
             step.job_id, step.consumed_event_id, step.at),
        )
        self._realtime(c, step.machine_name, "state_change",
                       {"machine_name": step.machine_name, "from_state": step.from_state,
                        "to_state": step.to_state, "event": step.event, "step": step.step,
                        "job_id": step.job_id}, step.at)

    # realtime stream

    def add_realtime(self, machine: str | None, kind: str, payload: dict[str, Any]) -> None:
        with self.conn.write() as c:
            self._realtime(c, machine, kind, payload, self.clock.now())

    def _realtime(
        self, c: Connection, machine: str | None, kind: str, payload: dict[str, Any],
        now: float,
    ) -> None:
        c.rows(
            "INSERT INTO realtime_events (machine_name, kind, payload, created_at)"
            " VALUES (?, ?, ?, ?)",
            (machine, kind, encode(payload), now),
        )

    def realtime_since(self, after_id: int = 0, limit: int = 500) -> list[RealtimeEvent]:
        rows = self.conn.rows(
            "SELECT * FROM realtime_events WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit)
        )
        return [RealtimeEvent(r["id"], r["machine_name"], r["kind"], decode(r["payload"]),
                              r["created_at"]) for r in rows]
