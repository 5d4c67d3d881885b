"""Schedules, written once for every dialect: rows that enqueue one job per tick, fired by
whichever machine process looks first. A tick is enqueued exactly once however many
processes fire: its job has a deterministic id (`sched:NAME:<tick epoch>`, inserted if
absent) and the schedule's next-due advances with a compare-and-set, in one transaction."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from statemachine_engine.clock import Clock, iso
from statemachine_engine.database.codec import decode, encode
from statemachine_engine.database.jobs import added_notice, new_job_row
from statemachine_engine.database.records import NewJob
from statemachine_engine.database.stream import insert_realtime_many
from statemachine_engine.database.tx import Connection, Row, Tx
from statemachine_engine.errors import NotFoundError, StateMachineError, StoreError, UsageError
from statemachine_engine.names import check_name
from statemachine_engine.ticks import CATCH_UP, Timing, due_ticks

logger = logging.getLogger(__name__)

#: Leaves room in the 100-character job id for `sched:` and the tick's epoch seconds.
SCHEDULE_NAME_MAX = 80


@dataclass(frozen=True)
class ScheduleSpec:
    """What a schedule enqueues and when: a job of `job_type` with `payload` (a JSON object,
    to which the tick is added) per tick of `timing`."""

    name: str
    job_type: str
    timing: Timing
    payload: dict[str, Any] | None = None
    machine_type: str | None = None
    catch_up: str = "latest"

    def __post_init__(self) -> None:
        check_name(self.name, "schedule name")
        if len(self.name) > SCHEDULE_NAME_MAX:
            raise UsageError(f"schedule name {self.name!r}: at most {SCHEDULE_NAME_MAX} characters")
        if self.catch_up not in CATCH_UP:
            raise UsageError(f"catch-up {self.catch_up!r}: expected one of {', '.join(CATCH_UP)}")
        if self.payload is not None and not isinstance(self.payload, dict):
            raise UsageError(f"schedule {self.name}: the payload must be a JSON object")


@dataclass(frozen=True)
class Schedule:
    """A stored schedule: its spec, whether it is paused, the next tick not yet enqueued and
    the last tick enqueued (None before the first)."""

    spec: ScheduleSpec
    paused: bool
    next_due: float
    last_tick: float | None
    created_at: float

    @property
    def name(self) -> str:
        return self.spec.name

    def to_dict(self) -> dict[str, Any]:
        """Every field, flat, as `schedule list --json` and `GET /api/schedules` show it."""
        spec = self.spec
        return {
            "name": spec.name,
            "job_type": spec.job_type,
            "every_seconds": spec.timing.every,
            "cron": spec.timing.cron,
            "timezone": spec.timing.timezone,
            "payload": spec.payload,
            "machine_type": spec.machine_type,
            "catch_up": spec.catch_up,
            "paused": self.paused,
            "next_due": self.next_due,
            "last_tick": self.last_tick,
            "created_at": self.created_at,
        }


def tick_job_id(name: str, tick: float) -> str:
    return f"sched:{name}:{int(tick)}"


def tick_data(spec: ScheduleSpec, tick: float) -> dict[str, Any]:
    """The job data of one tick: the payload plus the schedule's name and the tick time."""
    return {**(spec.payload or {}), "schedule": spec.name, "tick": int(tick), "tick_at": iso(tick)}


def tick_job(spec: ScheduleSpec, tick: float) -> NewJob:
    return NewJob(
        spec.job_type, tick_data(spec, tick), tick_job_id(spec.name, tick), spec.machine_type
    )


def schedule_from_row(row: Row) -> Schedule:
    timing = Timing(row["every_seconds"], row["cron"], row["timezone"])
    spec = ScheduleSpec(
        row["name"],
        row["job_type"],
        timing,
        decode(row["payload"]),
        row["machine_type"],
        row["catch_up"],
    )
    return Schedule(spec, bool(row["paused"]), row["next_due"], row["last_tick"], row["created_at"])


def spec_row(spec: ScheduleSpec, now: float) -> Row:
    """The columns of a schedule as `spec` says, first due at its next tick after `now`."""
    return {
        "name": spec.name,
        "job_type": spec.job_type,
        "payload": None if spec.payload is None else encode(spec.payload),
        "machine_type": spec.machine_type,
        "every_seconds": spec.timing.every,
        "cron": spec.timing.cron,
        "timezone": spec.timing.timezone,
        "catch_up": spec.catch_up,
        "next_due": spec.timing.next_after(now),
        "created_at": now,
    }


def fire_due(tx: Tx, now: float) -> None:
    """Enqueue the due ticks of every active schedule inside the caller's transaction."""
    for row in tx.query("schedules_due", {"now": now}):
        try:
            schedule = schedule_from_row(row)
            spec = schedule.spec
            ticks, next_due = due_ticks(spec.timing, schedule.next_due, now, spec.catch_up)
        except StateMachineError as exc:
            # e.g. a time zone this host's tz database lacks: pausing it, visibly, keeps it
            # from being due for ever (every machine would spin on it).
            logger.error("schedule %s cannot be evaluated here (%s); paused", row["name"], exc)
            tx.run("schedule_set_paused", {**row, "paused": 1})
            continue
        args = {
            "name": spec.name,
            "due": schedule.next_due,
            "next_due": next_due,
            "last_tick": ticks[-1] if ticks else schedule.last_tick,
        }
        tx.run("schedule_advance", args)
        if tx.changes() != 1 or not ticks:
            continue  # another process fired this schedule first
        jobs = [new_job_row(tick_job(spec, t), now) for t in ticks]
        added = {r["job_id"] for r in tx.query("jobs_insert_many", {"jobs": json.dumps(jobs)})}
        fresh = [job for job in jobs if job["job_id"] in added]
        if fresh:
            insert_realtime_many(tx, None, "job", [added_notice(job) for job in fresh], now)
            tx.wake_jobs(spec.job_type)


class Schedules:
    """The schedule methods of the Store contract."""

    conn: Connection
    clock: Clock

    def add_schedule(self, spec: ScheduleSpec) -> Schedule:
        values = spec_row(spec, self.clock.now())

        def work(tx: Tx) -> Row:
            row = tx.query_one("schedule_insert", values)
            if row is None:
                raise StoreError(f"schedule {spec.name!r} exists already")
            return row

        return schedule_from_row(self.conn.write(work))

    def put_schedule(self, spec: ScheduleSpec) -> Schedule:
        """Add the schedule, or make the stored one of that name `spec`: its next tick is
        recomputed only when the timing changed, and a paused schedule stays paused."""
        values = spec_row(spec, self.clock.now())

        def work(tx: Tx) -> Row:
            row = tx.query_one("schedule_insert", values)
            if row is not None:
                return row
            old = tx.query_one("schedule_get", values)
            assert old is not None
            if schedule_from_row(old).spec.timing == spec.timing:
                values["next_due"] = old["next_due"]
            updated = tx.query_one("schedule_update", values)
            assert updated is not None
            return updated

        return schedule_from_row(self.conn.write(work))

    def get_schedule(self, name: str) -> Schedule | None:
        row = self.conn.read(lambda tx: tx.query_one("schedule_get", {"name": name}))
        return None if row is None else schedule_from_row(row)

    def list_schedules(self) -> list[Schedule]:
        return [schedule_from_row(r) for r in self.conn.read(lambda tx: tx.query("schedules_list"))]

    def pause_schedule(self, name: str) -> Schedule:
        return self._set_paused(name, True)

    def resume_schedule(self, name: str) -> Schedule:
        return self._set_paused(name, False)

    def remove_schedule(self, name: str) -> None:
        def work(tx: Tx) -> None:
            if tx.query_one("schedule_delete", {"name": name}) is None:
                raise NotFoundError(f"no schedule {name!r}")

        self.conn.write(work)

    def fire_schedules(self) -> float | None:
        """Enqueue every due tick; the next due time of any active schedule (None without
        one). A read when nothing is due, so an idle process costs no write lock."""
        now = self.clock.now()
        due = self.conn.read(_next_due)
        if due is None or due > now:
            return due

        def work(tx: Tx) -> float | None:
            fire_due(tx, now)
            return _next_due(tx)

        return self.conn.write(work)

    def _set_paused(self, name: str, paused: bool) -> Schedule:
        now = self.clock.now()

        def work(tx: Tx) -> Row:
            row = tx.query_one("schedule_get", {"name": name})
            if row is None:
                raise NotFoundError(f"no schedule {name!r}")
            schedule = schedule_from_row(row)
            next_due = schedule.next_due
            if schedule.paused and not paused:
                next_due = schedule.spec.timing.next_after(now)
            args = {"name": name, "paused": int(paused), "next_due": next_due}
            updated = tx.query_one("schedule_set_paused", args)
            assert updated is not None
            return updated

        return schedule_from_row(self.conn.write(work))


def _next_due(tx: Tx) -> float | None:
    row = tx.query_one("schedules_next_due")
    return None if row is None or row["next_due"] is None else float(row["next_due"])
