"""Machines on PostgreSQL: durable events between them (each announced on the target's
channel when it commits), their state and history, and the one-transaction step commit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from statemachine_engine.clock import Clock
from statemachine_engine.database.codec import encode
from statemachine_engine.database.liveness import registration_refusal
from statemachine_engine.database.postgres.connection import Channels, Connection, Tx
from statemachine_engine.database.postgres.jobs import (
    claim_next,
    complete_held,
    fail_held,
    release_held,
)
from statemachine_engine.database.postgres.stream import insert_realtime
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
from statemachine_engine.errors import MachineRunningError

EVENT_NOTICE = '{"kind":"event"}'

_REGISTER = (
    "INSERT INTO machine_state (machine_name, current_state, state_entered_at, status, pid,"
    " hostname, pid_start, config_path, definition_name, definition_hash, started_at,"
    " updated_at,"
    " previous_state, last_event, current_job_id)"
    " VALUES (%(name)s, %(state)s, %(at)s, 'running', %(pid)s, %(hostname)s, %(pid_start)s,"
    " %(config_path)s, %(definition_name)s, %(definition_hash)s, %(at)s, %(at)s, NULL, NULL,"
    " NULL)"
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
    tx: Tx,
    channels: Channels,
    target: str,
    event_type: str,
    payload: Any,
    source: str | None,
    job_id: str | None,
    now: float,
) -> dict[str, Any]:
    """Write one pending event inside the caller's transaction and wake its target on commit."""
    row = tx.one(
        "INSERT INTO machine_events (target_machine, source_machine, event_type, job_id,"
        " payload, created_at) VALUES (%s, %s, %s, %s, %s, %s) RETURNING *",
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
        tx,
        channels,
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
    tx.notify(channels.machine(target), EVENT_NOTICE)
    return dict(row)


class MachineLog:
    """The event, machine, history and step methods of the Store contract."""

    conn: Connection
    clock: Clock
    refused_names: set[str]
    channels: Channels

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

        def work(tx: Tx) -> list[dict[str, Any]]:
            return [
                insert_event(
                    tx,
                    self.channels,
                    e.target_machine,
                    e.event_type,
                    e.payload,
                    source,
                    e.job_id,
                    now,
                )
                for e in events
            ]

        return [event_from_row(row) for row in self.conn.write(work)]

    def next_event(self, target: str) -> MachineEvent | None:
        row = self.conn.read(
            lambda tx: tx.one(
                "SELECT * FROM machine_events WHERE target_machine = %s AND status = 'pending'"
                " ORDER BY id LIMIT 1",
                (target,),
            )
        )
        return event_from_row(row) if row else None

    def mark_event(self, event_id: int, status: str) -> bool:
        now = self.clock.now()

        def work(tx: Tx) -> bool:
            tx.rows(
                "UPDATE machine_events SET status = %s, processed_at = %s"
                " WHERE id = %s AND status = 'pending'",
                (status, now, event_id),
            )
            return tx.changes() == 1

        return self.conn.write(work)

    def recover_events(
        self, target: str, why: str, *, max_deliveries: int = MAX_EVENT_DELIVERIES
    ) -> list[MachineEvent]:
        now = self.clock.now()

        def work(tx: Tx) -> list[dict[str, Any]]:
            found = tx.rows(
                "SELECT * FROM machine_events WHERE target_machine = %s AND status = 'handling'"
                " ORDER BY id FOR UPDATE",
                (target,),
            )
            rows = []
            for old in found:
                status, message, notice = interrupted_event(dict(old), why, max_deliveries)
                row = tx.one(
                    "UPDATE machine_events SET status = %s, error_message = %s,"
                    " processed_at = %s WHERE id = %s RETURNING *",
                    (status, message, now if status == "failed" else None, old["id"]),
                )
                assert row is not None
                rows.append(dict(row))
                insert_realtime(tx, self.channels, target, "event_interrupted", notice, now)
            return rows

        return [event_from_row(row) for row in self.conn.write(work)]

    def release_event(self, event_id: int) -> bool:
        def work(tx: Tx) -> bool:
            tx.rows(
                "UPDATE machine_events SET status = 'pending', processed_at = NULL,"
                " deliveries = GREATEST(deliveries - 1, 0)"
                " WHERE id = %s AND status = 'handling'",
                (event_id,),
            )
            return tx.changes() == 1

        return self.conn.write(work)

    def list_events(
        self, *, target: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[MachineEvent]:
        rows = self.conn.read(
            lambda tx: tx.rows(
                "SELECT * FROM machine_events"
                " WHERE (%(target)s::text IS NULL OR target_machine = %(target)s)"
                " AND (%(status)s::text IS NULL OR status = %(status)s)"
                " ORDER BY id DESC LIMIT %(limit)s",
                {"target": target, "status": status, "limit": limit},
            )
        )
        return [event_from_row(r) for r in rows]

    def clear_events(self, target: str) -> int:
        now = self.clock.now()

        def work(tx: Tx) -> int:
            tx.rows(
                "UPDATE machine_events SET status = 'processed', processed_at = %s"
                " WHERE target_machine = %s AND status = 'pending'",
                (now, target),
            )
            return tx.changes()

        return self.conn.write(work)

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
        def work(tx: Tx) -> dict[str, Any]:
            # Serialise starts of one name (there may be no row to lock yet).
            tx.rows("SELECT pg_advisory_xact_lock(hashtext(%s))", ("machine_state:" + name,))
            current = tx.one("SELECT * FROM machine_state WHERE machine_name = %s", (name,))
            refusal = registration_refusal(current, name, pid, hostname)
            if refusal is not None:
                self.refused_names.add(name)
                raise MachineRunningError(refusal)
            tx.rows(
                "INSERT INTO machine_definitions (digest, name, source, text, created_at)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (digest) DO NOTHING",
                (definition_hash, definition_name, config_path, definition_text, at),
            )
            row = tx.one(
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
                tx,
                self.channels,
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
            return dict(row)

        registered = machine_from_row(self.conn.write(work))
        self.refused_names.discard(name)
        return registered

    def machine_stopped(self, name: str, status: str, at: float) -> None:
        if name in self.refused_names:
            return  # the row belongs to the machine that runs: never mark it stopped

        def work(tx: Tx) -> None:
            tx.rows(
                "UPDATE machine_state SET status = %s, updated_at = %s, current_job_id = NULL"
                " WHERE machine_name = %s",
                (status, at, name),
            )
            insert_realtime(
                tx,
                self.channels,
                name,
                "machine_stopped",
                {"machine_name": name, "status": status},
                at,
            )

        self.conn.write(work)

    def get_machine(self, name: str) -> MachineStatus | None:
        row = self.conn.read(
            lambda tx: tx.one("SELECT * FROM machine_state WHERE machine_name = %s", (name,))
        )
        return machine_from_row(row) if row else None

    def list_machines(self) -> list[MachineStatus]:
        rows = self.conn.read(
            lambda tx: tx.rows('SELECT * FROM machine_state ORDER BY machine_name COLLATE "C"')
        )
        return [machine_from_row(r) for r in rows]

    def get_definition(self, digest: str) -> dict[str, Any] | None:
        row = self.conn.read(
            lambda tx: tx.one("SELECT * FROM machine_definitions WHERE digest = %s", (digest,))
        )
        return dict(row) if row else None

    def history(self, *, machine: str | None = None, limit: int = 100) -> list[TransitionRecord]:
        rows = self.conn.read(
            lambda tx: tx.rows(
                "SELECT * FROM transitions"
                " WHERE (%(machine)s::text IS NULL OR machine_name = %(machine)s)"
                " ORDER BY id DESC LIMIT %(limit)s",
                {"machine": machine, "limit": limit},
            )
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

        def work(tx: Tx) -> Committed:
            acked = tuple(_commit_step(tx, self.channels, step) for step in steps)
            for job in release:
                release_held(tx, self.channels, job.job_id, job.lease_owner or "", now)
            jobs = claim_next(tx, self.channels, claim, now) if claim is not None else []
            return Committed(acked, tuple(jobs))

        return self.conn.write(work)


def _commit_step(tx: Tx, channels: Channels, step: Step) -> bool:
    acked = _ack(tx, channels, step)
    if acked:
        for out in step.outbox:
            insert_event(
                tx,
                channels,
                out.target_machine,
                out.event_type,
                out.payload,
                step.machine_name,
                out.job_id,
                step.at,
            )
    if step.finished_event_id is not None:
        tx.rows(
            "UPDATE machine_events SET status = 'processed', processed_at = %s"
            " WHERE id = %s AND status = 'handling'",
            (step.at, step.finished_event_id),
        )
    if step.consumed_event_id is not None:
        tx.rows(
            "UPDATE machine_events SET status = %(status)s, processed_at = %(at)s,"
            " deliveries = deliveries"
            " + (CASE WHEN %(status)s = 'unhandled' THEN 0 ELSE 1 END)"
            " WHERE id = %(id)s",
            {"status": step.consumed_event_status, "at": step.at, "id": step.consumed_event_id},
        )
    if step.to_state is not None:
        _record_transition(tx, channels, step)
    for kind, payload in step.realtime:
        insert_realtime(tx, channels, step.machine_name, kind, payload, step.at)
    return acked


def _ack(tx: Tx, channels: Channels, step: Step) -> bool:
    ack = step.job_ack
    if ack is None:
        return True
    if ack.outcome == "completed":
        return complete_held(tx, channels, ack.job_id, ack.owner, ack.result, step.at)
    status = fail_held(
        tx, channels, ack.job_id, ack.owner, ack.error or "error", ack.retry_delay, step.at
    )
    return status is not None


def _record_transition(tx: Tx, channels: Channels, step: Step) -> None:
    assert step.to_state is not None
    tx.rows(
        "UPDATE machine_state SET current_state = %(to_state)s, previous_state = %(from_state)s,"
        " last_event = %(event)s, step = %(step)s, updated_at = %(at)s,"
        " current_job_id = %(job_id)s,"
        " state_entered_at = CASE WHEN %(changed)s THEN %(at)s ELSE state_entered_at END"
        " WHERE machine_name = %(machine)s",
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
    tx.rows(
        "INSERT INTO transitions (machine_name, step, from_state, to_state, event, job_id,"
        " event_id, event_delivery, created_at) VALUES (%(machine)s, %(step)s, %(from)s,"
        " %(to)s, %(event)s, %(job)s, %(event_id)s,"
        " (SELECT deliveries FROM machine_events WHERE id = %(event_id)s), %(at)s)",
        {
            "machine": step.machine_name,
            "step": step.step,
            "from": step.from_state,
            "to": step.to_state,
            "event": step.event,
            "job": step.job_id,
            "event_id": step.consumed_event_id,
            "at": step.at,
        },
    )
    insert_realtime(
        tx,
        channels,
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
