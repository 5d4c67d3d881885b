"""REST API: machines, definitions as Mermaid, jobs, events, history, and the page's actions."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from statemachine_engine import __version__
from statemachine_engine.database import Store
from statemachine_engine.database.records import JOB_STATUSES
from statemachine_engine.errors import (
    ConfigError,
    DuplicateJobError,
    NotFoundError,
    StateMachineError,
    StoreError,
)
from statemachine_engine.monitoring.db import Db
from statemachine_engine.monitoring.definitions import definition_view
from statemachine_engine.monitoring.stream import HealthInputs, Hub, health_inputs
from statemachine_engine.monitoring.timeline import timeline_view
from statemachine_engine.names import name_problem
from statemachine_engine.transport import ring

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api")

Name = Annotated[str, Field(min_length=1, max_length=200)]


def _follows_name_rule(value: str) -> str:
    problem = name_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


#: A job id or event name: the one name rule of `names.py` (422 with the reason otherwise).
RuleName = Annotated[str, AfterValidator(_follows_name_rule)]
StatusFilter = Annotated[str | None, Query(pattern="^(" + "|".join(JOB_STATUSES) + ")$")]
Limit = Annotated[int, Query(ge=1, le=1000)]


class NewJob(BaseModel):
    """A job to enqueue from the page."""

    model_config = ConfigDict(extra="forbid")
    job_type: Name
    data: Any = None
    job_id: RuleName | None = None
    machine_type: Annotated[str | None, Field(max_length=200)] = None
    priority: Annotated[int, Field(ge=1, le=100)] = 5
    max_attempts: Annotated[int, Field(ge=1, le=100)] = 3


class NewEvent(BaseModel):
    """An event to send to a machine from the page."""

    model_config = ConfigDict(extra="forbid")
    event_type: RuleName
    payload: Any = None


def _db(request: Request) -> Db:
    db: Db = request.app.state.db
    return db


def _hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


def _not_found(what: str) -> HTTPException:
    return HTTPException(status_code=404, detail=f"{what} not found")


@router.get("/health", summary="Server health and version")
async def health(request: Request) -> dict[str, Any]:
    hub = _hub(request)
    return {"ok": True, "version": __version__, "clients": len(hub.clients), "last_id": hub.last_id}


@router.get("/machines", summary="Every machine with its current state and liveness")
async def list_machines(request: Request) -> dict[str, Any]:
    return {"machines": await _hub(request).machine_views()}


@router.get("/machines/{name}", summary="One machine and its recent transitions")
async def get_machine(request: Request, name: str, limit: Limit = 50) -> dict[str, Any]:
    def read(store: Store) -> tuple[HealthInputs, Any]:
        return health_inputs(store), store.history(machine=name, limit=limit)

    (machines, overdue, now), history = await _db(request).call(read)
    machine = next((m for m in machines if m.machine_name == name), None)
    if machine is None:
        raise _not_found(f"machine {name!r}")
    view = _hub(request).views([machine], overdue, now)[0]
    return {"machine": view, "transitions": [t.to_dict() for t in history]}


async def _definition(request: Request, digest: str) -> dict[str, Any]:
    row = await _db(request).call(lambda s: s.get_definition(digest))
    if row is None:
        raise _not_found(f"definition {digest[:64]!r}")
    try:
        view = definition_view(digest, str(row.get("name") or ""), str(row["text"]))
    except ConfigError as exc:
        raise HTTPException(
            status_code=422, detail=f"stored definition is invalid: {exc}"
        ) from None
    return view.to_dict()


@router.get("/machines/{name}/diagram", summary="A machine's definition as Mermaid text")
async def machine_diagram(request: Request, name: str) -> dict[str, Any]:
    machine = await _db(request).call(lambda s: s.get_machine(name))
    if machine is None:
        raise _not_found(f"machine {name!r}")
    if not machine.definition_hash:
        raise _not_found(f"definition of machine {name!r}")
    out = await _definition(request, machine.definition_hash)
    out.update(
        machine_name=name,
        current_state=machine.current_state,
        previous_state=machine.previous_state,
        last_event=machine.last_event,
    )
    return out


@router.get("/definitions/{digest}", summary="A stored definition: states, groups, Mermaid")
async def get_definition(request: Request, digest: str) -> dict[str, Any]:
    return await _definition(request, digest)


@router.get("/jobs", summary="Jobs filtered by status and type, paged, with counts by status")
async def list_jobs(
    request: Request,
    status: StatusFilter = None,
    job_type: Annotated[str | None, Query(alias="type", max_length=200)] = None,
    limit: Limit = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    def read(store: Store) -> tuple[Any, dict[str, int]]:
        jobs = store.list_jobs(status=status, job_type=job_type, limit=limit, offset=offset)
        return jobs, store.count_jobs(job_type=job_type)

    jobs, counts = await _db(request).call(read)
    total = counts.get(status, 0) if status else sum(counts.values())
    return {
        "jobs": [j.to_dict() for j in jobs],
        "counts": counts,
        "total": total,
        "limit": limit,
        "offset": offset,
    }


@router.get("/jobs/counts", summary="Job counts by status")
async def job_counts(
    request: Request, job_type: Annotated[str | None, Query(alias="type", max_length=200)] = None
) -> dict[str, int]:
    return await _db(request).call(lambda s: s.count_jobs(job_type=job_type))


@router.get("/jobs/{job_id}", summary="One job with its data, result and errors")
async def get_job(request: Request, job_id: str) -> dict[str, Any]:
    job = await _db(request).call(lambda s: s.get_job(job_id))
    if job is None:
        raise _not_found(f"job {job_id!r}")
    return job.to_dict()


@router.get(
    "/jobs/{job_id}/timeline",
    summary="A job's attempts: worker, times, outcome, transitions, events sent, actions",
)
async def job_timeline(request: Request, job_id: str) -> dict[str, Any]:
    timeline = await _db(request).call(lambda s: s.job_timeline(job_id))
    if timeline is None:
        raise _not_found(f"job {job_id!r}")
    return timeline_view(timeline)


@router.post("/jobs", status_code=201, summary="Enqueue a job")
async def add_job(request: Request, body: NewJob) -> dict[str, Any]:
    def write(store: Store) -> Any:
        return store.add_job(
            body.job_type,
            body.data if body.data is not None else {},
            job_id=body.job_id,
            machine_type=body.machine_type,
            priority=body.priority,
            max_attempts=body.max_attempts,
        )

    try:
        job = await _db(request).call(write)
    except DuplicateJobError as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None
    except StoreError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    _hub(request).wake()
    return dict(job.to_dict())


async def _job_action(request: Request, job_id: str, action: str) -> dict[str, Any]:
    def write(store: Store) -> Any:
        return store.retry_job(job_id) if action == "retry" else store.cancel_job(job_id)

    try:
        job = await _db(request).call(write)
    except NotFoundError:
        raise _not_found(f"job {job_id!r}") from None
    except StoreError as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None
    if action == "retry":
        _hub(request).wake()
    return dict(job.to_dict())


@router.post("/jobs/{job_id}/retry", summary="Put a failed or cancelled job back in the queue")
async def retry_job(request: Request, job_id: str) -> dict[str, Any]:
    return await _job_action(request, job_id, "retry")


@router.post("/jobs/{job_id}/cancel", summary="Cancel a pending job")
async def cancel_job(request: Request, job_id: str) -> dict[str, Any]:
    return await _job_action(request, job_id, "cancel")


@router.post("/machines/{name}/events", status_code=201, summary="Send an event to a machine")
async def send_event(request: Request, name: str, body: NewEvent) -> dict[str, Any]:
    def write(store: Store) -> Any:
        if store.get_machine(name) is None:
            return None
        return store.send_event(name, body.event_type, body.payload, source="statemachine-ui")

    try:
        event = await _db(request).call(write)
    except StoreError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    if event is None:
        raise _not_found(f"machine {name!r}")
    try:
        delivered = ring(name, {"kind": "event"})
    except (StateMachineError, ValueError) as exc:  # a bad name only skips the ring
        log.debug("no doorbell for machine=%s: %s", name, exc)
        delivered = False
    _hub(request).wake()
    return {**event.to_dict(), "woken": delivered}


_EVENT_STATUS = "^(pending|handling|processed|unhandled|failed)$"


@router.get("/events", summary="Recent events between machines")
async def list_events(
    request: Request,
    target: Annotated[str | None, Query(max_length=200)] = None,
    status: Annotated[str | None, Query(pattern=_EVENT_STATUS)] = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    events = await _db(request).call(
        lambda s: s.list_events(target=target, status=status, limit=limit)
    )
    return {"events": [e.to_dict() for e in events]}


@router.get("/transitions", summary="Recent state transitions, newest first")
async def list_transitions(
    request: Request,
    machine: Annotated[str | None, Query(max_length=200)] = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    rows = await _db(request).call(lambda s: s.history(machine=machine, limit=limit))
    return {"transitions": [t.to_dict() for t in rows]}


@router.get("/realtime", summary="Stream rows after an id (what the WebSocket pushes)")
async def realtime(
    request: Request, after_id: Annotated[int, Query(ge=0)] = 0, limit: Limit = 500
) -> dict[str, Any]:
    rows = await _db(request).call(lambda s: s.realtime_since(after_id, limit))
    return {"events": [r.to_dict() for r in rows]}
