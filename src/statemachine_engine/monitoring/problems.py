"""REST API for the operator's problems: failed jobs, unhandled and failed events, delayed
jobs, bulk retry and cancel (with edited data), and named definition versions."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from statemachine_engine.database import Store
from statemachine_engine.database.records import Job
from statemachine_engine.errors import NotFoundError, StoreError
from statemachine_engine.monitoring.db import Db
from statemachine_engine.monitoring.stream import Hub

router = APIRouter(prefix="/api")

MAX_IDS = 1000
PROBLEM_LIMIT = 200
JobIds = Annotated[list[Annotated[str, Field(min_length=1, max_length=200)]], Field(min_length=1)]


class RetryJobs(BaseModel):
    """Jobs to put back in the queue; `data` replaces the data of the jobs it names."""

    model_config = ConfigDict(extra="forbid")
    job_ids: Annotated[JobIds, Field(max_length=MAX_IDS)]
    data: dict[str, Any] | None = None


class CancelJobs(BaseModel):
    """Pending jobs to cancel."""

    model_config = ConfigDict(extra="forbid")
    job_ids: Annotated[JobIds, Field(max_length=MAX_IDS)]


def _db(request: Request) -> Db:
    db: Db = request.app.state.db
    return db


def _hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


def version_label(name: str, digest: str, first_seen: float, number: int) -> str:
    """A definition version's name: `Worker v2 · 1a2b3c4d · first seen 2026-12-02 09:15 UTC`."""
    seen = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(first_seen))
    return f"{name} v{number} · {digest[:8]} · first seen {seen}"


def versions(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stored definitions (oldest first) with a version number per name and a label."""
    counts: dict[str, int] = {}
    out = []
    for row in rows:
        name, digest, seen = str(row["name"]), str(row["digest"]), float(row["created_at"])
        counts[name] = counts.get(name, 0) + 1
        out.append(
            {
                "digest": digest,
                "name": name,
                "first_seen": seen,
                "short": digest[:8],
                "version": counts[name],
                "label": version_label(name, digest, seen, counts[name]),
            }
        )
    return out


def _job_view(job: Job) -> dict[str, Any]:
    out = job.to_dict()
    out["error"] = job.error_message or (job.errors[-1] if job.errors else None)
    return out


@router.get("/problems", summary="Failed jobs, unhandled or failed events, delayed jobs")
async def problems(request: Request) -> dict[str, Any]:
    def read(store: Store) -> dict[str, Any]:
        failed = store.failed_jobs(limit=PROBLEM_LIMIT)
        events = store.list_events(status="unhandled", limit=PROBLEM_LIMIT)
        events += store.list_events(status="failed", limit=PROBLEM_LIMIT)
        events.sort(key=lambda e: e.id, reverse=True)
        delayed = store.delayed_jobs(limit=PROBLEM_LIMIT)
        return {
            "failed_jobs": [_job_view(j) for j in failed],
            "failed_total": store.count_jobs().get("failed", 0),
            "events": [e.to_dict() for e in events[:PROBLEM_LIMIT]],
            "delayed_jobs": [_job_view(j) for j in delayed],
            "now": store.clock.now(),
        }

    return await _db(request).call(read)


async def _bulk(request: Request, work: Any) -> dict[str, Any]:
    try:
        jobs: list[Job] = await _db(request).call(work)
    except NotFoundError as exc:
        raise HTTPException(status_code=404, detail=f"{exc}; nothing changed") from None
    except StoreError as exc:
        raise HTTPException(status_code=409, detail=f"{exc}; nothing changed") from None
    _hub(request).wake()
    return {"jobs": [j.to_dict() for j in jobs], "count": len(jobs)}


@router.post("/jobs/retry", summary="Retry failed or cancelled jobs (all or none), data edited")
async def retry_jobs(request: Request, body: RetryJobs) -> dict[str, Any]:
    stray = sorted(set(body.data or {}) - set(body.job_ids))
    if stray:
        raise HTTPException(
            status_code=422, detail=f"data: job {stray[0]!r} is not in job_ids; nothing changed"
        )
    return await _bulk(request, lambda s: s.retry_jobs(body.job_ids, data=body.data))


@router.post("/jobs/cancel", summary="Cancel pending jobs (all or none)")
async def cancel_jobs(request: Request, body: CancelJobs) -> dict[str, Any]:
    return await _bulk(request, lambda s: s.cancel_jobs(body.job_ids))


@router.get("/definitions", summary="Stored definition versions, named by first-seen time")
async def list_definitions(request: Request) -> dict[str, Any]:
    rows = await _db(request).call(lambda s: s.list_definitions())
    return {"definitions": versions(rows)}
