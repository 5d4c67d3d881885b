"""REST API for schedules: list them with their next and last tick, pause and resume one.
Store calls run on the UI's store thread (`Db.call`), never on the event loop."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel

from statemachine_engine.database import Store
from statemachine_engine.database.schedules import Schedule
from statemachine_engine.errors import NotFoundError, StoreError
from statemachine_engine.monitoring.db import Db

router = APIRouter(prefix="/api")


class ScheduleView(BaseModel):
    """A stored schedule. Times are epoch seconds; `next_due` is the next tick not yet
    enqueued (while paused, the tick it was waiting for), `last_tick` the last one enqueued."""

    name: str
    when: str
    job_type: str
    every_seconds: int | None
    cron: str | None
    timezone: str
    payload: dict[str, Any] | None
    machine_type: str | None
    catch_up: str
    paused: bool
    next_due: float
    last_tick: float | None
    created_at: float


class ScheduleList(BaseModel):
    """Every schedule by name, and the store's clock (`now`) to count the time to each tick."""

    schedules: list[ScheduleView]
    now: float


def schedule_view(schedule: Schedule) -> ScheduleView:
    return ScheduleView(when=schedule.spec.timing.describe(), **schedule.to_dict())


def _db(request: Request) -> Db:
    db: Db = request.app.state.db
    return db


@router.get("/schedules", summary="Every schedule: timing, job, paused, next and last tick")
async def list_schedules(request: Request) -> ScheduleList:
    def read(store: Store) -> tuple[list[Schedule], float]:
        return store.list_schedules(), store.clock.now()

    schedules, now = await _db(request).call(read)
    return ScheduleList(schedules=[schedule_view(s) for s in schedules], now=now)


@router.get("/schedules/{name}", summary="One schedule")
async def get_schedule(request: Request, name: str) -> ScheduleView:
    schedule = await _db(request).call(lambda s: s.get_schedule(name))
    if schedule is None:
        raise _not_found(name)
    return schedule_view(schedule)


async def _set_paused(request: Request, name: str, paused: bool) -> ScheduleView:
    def write(store: Store) -> Schedule:
        return store.pause_schedule(name) if paused else store.resume_schedule(name)

    try:
        schedule = await _db(request).call(write)
    except NotFoundError:
        raise _not_found(name) from None
    except StoreError as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None
    return schedule_view(schedule)


@router.post("/schedules/{name}/pause", summary="Stop enqueueing a schedule's ticks")
async def pause_schedule(request: Request, name: str) -> ScheduleView:
    return await _set_paused(request, name, True)


@router.post(
    "/schedules/{name}/resume",
    summary="Enqueue a schedule's ticks again from the next one (ticks while paused are skipped)",
)
async def resume_schedule(request: Request, name: str) -> ScheduleView:
    return await _set_paused(request, name, False)


def _not_found(name: str) -> HTTPException:
    return HTTPException(status_code=404, detail=f"schedule {name!r} not found")
