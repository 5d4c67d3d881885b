"""Machines on SQLite: durable events between them, their state and history, and the step
commit that ties a transition, its job acknowledgement and its outbox into one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from statemachine_engine.clock import Clock
from statemachine_engine.database.codec import encode
from statemachine_engine.database.liveness import registration_refusal
from statemachine_engine.database.records import (
    MAX_EVENT_DELIVERIES,
    Claim,
    Committed,
    Job,
    MachineEvent,
    MachineStatus,
    OutgoingEvent,
    Step,
    TransitionRecord,
)
from statemachine_engine.database.rows import (
    event_from_row,
    interrupted_event,
    machine_from_row,
    transition_from_row,
)
from statemachine_engine.database.sqlite.connection import Connection
from statemachine_engine.database.sqlite.jobs import (
    claim_next,
    complete_held,
    fail_held,
    release_held,
)
from statemachine_engine.database.sqlite.stream import insert_realtime
from statemachine_engine.errors import MachineRunningError

_REGISTER = (
    "INSERT INTO machine_state (machine_name, current_state, state_entered_at, status, pid,"
    " hostname, pid_start, config_path, definition_name, definition_hash, started_at,"
    " updated_at,"
    " previous_state, last_event, current_job_id)"
    " VALUES (:name, :state, :at, 'running', :pid, :hostname, :pid_start, :config_path,"
    " :definition_name, :definition_hash, :at, :at, NULL, NULL, NULL)"
    " ON CONFLICT (machine_name) DO UPDATE SET current_state = excluded.current_state,"
    " state_entered_at = excluded.state_entered_at, status = 'running', pid = excluded.pid,"
    " hostname = excluded.hostname, pid_start = excluded.pid_start,"
    " config_path = excluded.config_path,"
    " definition_name = excluded.definition_name, definition_hash = excluded.definition_hash,"
    " started_at = excluded.started_at, updated_at = excluded.updated_at,"
    " previous_state = NULL, last_event = NULL, current_job_id = NULL"
    " RETURNING *"
)


def insert_event(
    c: Connection,
    target: str,
    event_type: str,
    payload: Any,
    source: str | None,
    job_id: str | None,
    now: float,
) -> dict[str, Any]:
    """Write one pending event inside the caller's transaction."""
    row = c.one(
        "INSERT INTO machine_events (target_machine, source_machine, event_type, job_id,"
        " payload, created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING *",
        (
            target,
            source,
            event_type,
            job_id,
            encode(payload, what=f"payload of event {event_type!r}"),
            now,
        ),
    )
    assert row is not None
    insert_realtime(
        c,
        source,
        "event_sent",
        {
            "id": row["id"],
            "source": source,
            "target": target,
            "event_type": event_type,
            "job_id": job_id,
        },
        now,
    )
    return row


class MachineLog:
    """The event, machine, history and step methods of the Store contract."""

    conn: Connection
    clock: Clock
    refused_names: set[str]

    def send_event(
        self,
        target: str,
        event_type: str,
        payload: Any = None,
        *,
        source: str | None = None,
        job_id: str | None = None,
    ) -> MachineEvent:
        return self.send_events(
            [OutgoingEvent(target, event_type, payload, job_id)], source=source
        )[0]

    def send_events(
        self, events: Sequence[OutgoingEvent], *, source: str | None = None
    ) -> list[MachineEvent]:
        now = self.clock.now()
        with self.conn.write() as c:
            rows = [
                insert_event(c, e.target_machine, e.event_type, e.payload, source, e.job_id, now)
                for e in events
            ]
        return [event_from_row(row) for row in rows]

    def next_event(self, target: str) -> MachineEvent | None:
        self.conn.check_identity()  # the parked machine's safety re-check passes here
        row = self.conn.one(
            "SELECT * FROM machine_events WHERE target_machine = ? AND status = 'pending'"
            " ORDER BY id LIMIT 1",
            (target,),
        )
        return event_from_row(row) if row else None

    def mark_event(self, event_id: int, status: str) -> bool:
        with self.conn.write() as c:
            c.rows(
                "UPDATE machine_events SET status = ?, processed_at = ?"
                " WHERE id = ? AND status = 'pending'",
                (status, self.clock.now(), event_id),
            )
            return c.changes() == 1

    def recover_events(
        self, target: str, why: str, *, max_deliveries: int = MAX_EVENT_DELIVERIES
    ) -> list[MachineEvent]:
        now = self.clock.now()
        with self.conn.write() as c:
            found = c.rows(
                "SELECT * FROM machine_events WHERE target_machine = ? AND status = 'handling'"
                " ORDER BY id",
                (target,),
            )
            rows = []
            for old in found:
                status, message, notice = interrupted_event(old, why, max_deliveries)
                row = c.one(
                    "UPDATE machine_events SET status = ?, error_message = ?, processed_at = ?"
                    " WHERE id = ? RETURNING *",
                    (status, message, now if status == "failed" else None, old["id"]),
                )
                assert row is not None
                rows.append(row)
                insert_realtime(c, target, "event_interrupted", notice, now)
        return [event_from_row(row) for row in rows]

    def release_event(self, event_id: int) -> bool:
        with self.conn.write() as c:
            c.rows(
                "UPDATE machine_events SET status = 'pending', processed_at = NULL,"
                " deliveries = MAX(deliveries - 1, 0) WHERE id = ? AND status = 'handling'",
                (event_id,),
            )
            return c.changes() == 1

    def list_events(
        self, *, target: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[MachineEvent]:
        rows = self.conn.rows(
            "SELECT * FROM machine_events WHERE (:target IS NULL OR target_machine = :target)"
            " AND (:status IS NULL OR status = :status) ORDER BY id DESC LIMIT :limit",
            {"target": target, "status": status, "limit": limit},
        )
        return [event_from_row(r) for r in rows]

    def clear_events(self, target: str) -> int:
        with self.conn.write() as c:
            c.rows(
                "UPDATE machine_events SET status = 'processed', processed_at = ?"
                " WHERE target_machine = ? AND status = 'pending'",
                (self.clock.now(), target),
            )
            return c.changes()

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
        pid_start: int | None = None,
    ) -> MachineStatus:
        with self.conn.write() as c:
            current = c.one("SELECT * FROM machine_state WHERE machine_name = ?", (name,))
            refusal = registration_refusal(current, name, pid, hostname)
            if refusal is not None:
                self.refused_names.add(name)
                raise MachineRunningError(refusal)
            c.rows(
                "INSERT OR IGNORE INTO machine_definitions (digest, name, source, text,"
                " created_at) VALUES (?, ?, ?, ?, ?)",
                (definition_hash, definition_name, config_path, definition_text, at),
            )
            row = c.one(
                _REGISTER,
                {
                    "name": name,
                    "state": state,
                    "at": at,
                    "pid": pid,
                    "hostname": hostname,
                    "pid_start": pid_start,
                    "config_path": config_path,
                    "definition_name": definition_name,
                    "definition_hash": definition_hash,
                },
            )
            assert row is not None
            insert_realtime(
                c,
                name,
                "machine_started",
                {
                    "machine_name": name,
                    "state": state,
                    "pid": pid,
                    "definition_hash": definition_hash,
                },
                at,
            )
        self.refused_names.discard(name)
        return machine_from_row(row)

    def machine_stopped(self, name: str, status: str, at: float) -> None:
        if name in self.refused_names:
            return  # the row belongs to the machine that runs: never mark it stopped
        with self.conn.write() as c:
            c.rows(
                "UPDATE machine_state SET status = ?, updated_at = ?, current_job_id = NULL"
                " WHERE machine_name = ?",
                (status, at, name),
            )
            insert_realtime(
                c, name, "machine_stopped", {"machine_name": name, "status": status}, at
            )

    def get_machine(self, name: str) -> MachineStatus | None:
        row = self.conn.one("SELECT * FROM machine_state WHERE machine_name = ?", (name,))
        return machine_from_row(row) if row else None

    def list_machines(self) -> list[MachineStatus]:
        rows = self.conn.rows("SELECT * FROM machine_state ORDER BY machine_name")
        return [machine_from_row(r) for r in rows]

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
        return [transition_from_row(r) for r in rows]

    def commit_step(self, step: Step) -> bool:
        return self.commit_steps((step,)).acked[0]

    def commit_steps(
        self,
        steps: Sequence[Step],
        claim: Claim | None = None,
        release: Sequence[Job] = (),
    ) -> Committed:
        now = self.clock.now()
        with self.conn.write() as c:
            acked = tuple(_commit_step(c, step) for step in steps)
            for job in release:
                release_held(c, job.job_id, job.lease_owner or "", now)
            jobs = claim_next(c, claim, now) if claim is not None else []
        return Committed(acked, tuple(jobs))


def _commit_step(c: Connection, step: Step) -> bool:
    acked = _ack(c, step)
    if acked:
        for out in step.outbox:
            insert_event(
                c,
                out.target_machine,
                out.event_type,
                out.payload,
                step.machine_name,
                out.job_id,
                step.at,
            )
    if step.finished_event_id is not None:
        c.rows(
            "UPDATE machine_events SET status = 'processed', processed_at = ?"
            " WHERE id = ? AND status = 'handling'",
            (step.at, step.finished_event_id),
        )
    if step.consumed_event_id is not None:
        c.rows(
            "UPDATE machine_events SET status = ?, processed_at = ?,"
            " deliveries = deliveries + (CASE WHEN ? = 'unhandled' THEN 0 ELSE 1 END)"
            " WHERE id = ?",
            (
                step.consumed_event_status,
                step.at,
                step.consumed_event_status,
                step.consumed_event_id,
            ),
        )
    if step.to_state is not None:
        _record_transition(c, step)
    for kind, payload in step.realtime:
        insert_realtime(c, step.machine_name, kind, payload, step.at)
    return acked


def _ack(c: Connection, step: Step) -> bool:
    ack = step.job_ack
    if ack is None:
        return True
    if ack.outcome == "completed":
        return complete_held(c, ack.job_id, ack.owner, ack.result, step.at)
    status = fail_held(c, ack.job_id, ack.owner, ack.error or "error", ack.retry_delay, step.at)
    return status is not None


def _record_transition(c: Connection, step: Step) -> None:
    assert step.to_state is not None
    c.rows(
        "UPDATE machine_state SET current_state = :to_state, previous_state = :from_state,"
        " last_event = :event, step = :step, updated_at = :at, current_job_id = :job_id,"
        " state_entered_at = CASE WHEN :changed THEN :at ELSE state_entered_at END"
        " WHERE machine_name = :machine",
        {
            "to_state": step.to_state,
            "from_state": step.from_state,
            "event": step.event,
            "step": step.step,
            "at": step.at,
            "job_id": step.job_id if step.job_ack is None else None,
            "changed": step.from_state != step.to_state,
            "machine": step.machine_name,
        },
    )
    c.rows(
        "INSERT INTO transitions (machine_name, step, from_state, to_state, event, job_id,"
        " event_id, event_delivery, created_at) VALUES (?, ?, ?, ?, ?, ?, ?,"
        " (SELECT deliveries FROM machine_events WHERE id = ?), ?)",
        (
            step.machine_name,
            step.step,
            step.from_state,
            step.to_state,
            step.event,
            step.job_id,
            step.consumed_event_id,
            step.consumed_event_id,
            step.at,
        ),
    )
    insert_realtime(
        c,
        step.machine_name,
        "state_change",
        {
            "machine_name": step.machine_name,
            "from_state": step.from_state,
            "to_state": step.to_state,
            "event": step.event,
            "step": step.step,
            "job_id": step.job_id,
        },
        step.at,
    )
