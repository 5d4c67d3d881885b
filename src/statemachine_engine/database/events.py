"""Durable events between machines, written once for every dialect: each event is pending
until its target consumes it in a step; its target is woken after the commit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from statemachine_engine.clock import Clock
from statemachine_engine.database.codec import encode
from statemachine_engine.database.records import (
    MAX_EVENT_DELIVERIES,
    MachineEvent,
    OutgoingEvent,
)
from statemachine_engine.database.rows import event_from_row, interrupted_event
from statemachine_engine.database.stream import insert_realtime
from statemachine_engine.database.tx import Connection, Row, Tx


def insert_event(
    tx: Tx,
    event: OutgoingEvent,
    source: str | None,
    now: float,
    *,
    held: tuple[str, int] | None = None,
) -> Row:
    """Write one pending event inside the caller's transaction and wake its target on commit;
    `held` (job id, attempt) links it to the attempt of the job its sender held."""
    row = tx.query_one(
        "event_insert",
        {
            "target": event.target_machine,
            "source": source,
            "event_type": event.event_type,
            "job_id": event.job_id,
            "payload": encode(event.payload, what=f"payload of event {event.event_type!r}"),
            "created_at": now,
            "held_job_id": held[0] if held else None,
            "attempt": held[1] if held else None,
        },
    )
    assert row is not None
    notice = {
        "id": row["id"],
        "source": source,
        "target": event.target_machine,
        "event_type": event.event_type,
        "job_id": event.job_id,
    }
    insert_realtime(tx, source, "event_sent", notice, now)
    tx.wake_machine(event.target_machine)
    return row


class EventBox:
    """The event methods of the Store contract."""

    conn: Connection
    clock: Clock

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
        rows = self.conn.write(lambda tx: [insert_event(tx, e, source, now) for e in events])
        return [event_from_row(row) for row in rows]

    def next_event(self, target: str) -> MachineEvent | None:
        row = self.conn.read(lambda tx: tx.query_one("event_next", {"target": target}))
        return event_from_row(row) if row else None

    def mark_event(self, event_id: int, status: str) -> bool:
        args = {"status": status, "now": self.clock.now(), "id": event_id}
        return self._changed_one("event_mark", args)

    def recover_events(
        self,
        target: str,
        why: str,
        *,
        max_deliveries: int = MAX_EVENT_DELIVERIES,
        keep: int | None = None,
    ) -> list[MachineEvent]:
        now = self.clock.now()

        def work(tx: Tx) -> list[Row]:
            rows = []
            for old in tx.query("events_handling", {"target": target}):
                if old["id"] == keep:
                    continue
                status, message, notice = interrupted_event(old, why, max_deliveries)
                row = tx.query_one(
                    "event_interrupt",
                    {
                        "status": status,
                        "error": message,
                        "processed_at": now if status == "failed" else None,
                        "id": old["id"],
                    },
                )
                assert row is not None
                rows.append(row)
                insert_realtime(tx, target, "event_interrupted", notice, now)
            return rows

        return [event_from_row(row) for row in self.conn.write(work)]

    def release_event(self, event_id: int) -> bool:
        return self._changed_one("event_release", {"id": event_id})

    def list_events(
        self, *, target: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[MachineEvent]:
        args = {"target": target, "status": status, "limit": limit}
        return [event_from_row(r) for r in self.conn.read(lambda tx: tx.query("events_list", args))]

    def clear_events(self, target: str) -> int:
        args = {"now": self.clock.now(), "target": target}

        def work(tx: Tx) -> int:
            tx.run("events_clear", args)
            return tx.changes()

        return self.conn.write(work)

    def _changed_one(self, statement: str, args: dict[str, Any]) -> bool:
        def work(tx: Tx) -> bool:
            tx.run(statement, args)
            return tx.changes() == 1

        return self.conn.write(work)
