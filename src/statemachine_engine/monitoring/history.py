"""History API and pages: a machine's timeline by cursor, and the page's own URLs
(`/machines/NAME`, `/jobs/ID`), which return the app so that a link or a reload works."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field

from statemachine_engine.database import Store
from statemachine_engine.database.history import MAX_TIMELINE_LIMIT, CursorError, TimelinePage
from statemachine_engine.monitoring.db import Db

router = APIRouter(prefix="/api")


class Timeline(BaseModel):
    """One page of a machine's timeline, newest first."""

    machine: str
    items: list[dict[str, Any]] = Field(
        description="Each item has `kind` (transition, event_received, event_sent, job, "
        "error, machine), `at` (epoch seconds), `id` (the row in its table: transition, "
        "event or stream row), `key` (unique, ordered) and the fields of its kind."
    )
    before: str | None = Field(description="Cursor of the next (older) page; null at the start.")


@router.get(
    "/machines/{name}/timeline",
    summary="A machine's history, newest first, paged by cursor",
    response_model=Timeline,
)
async def machine_timeline(
    request: Request,
    name: str,
    before: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_TIMELINE_LIMIT)] = 100,
) -> dict[str, Any]:
    def read(store: Store) -> TimelinePage | None:
        if store.get_machine(name) is None:
            return None
        return store.machine_timeline(name, before=before, limit=limit)

    db: Db = request.app.state.db
    try:
        page = await db.call(read)
    except CursorError as exc:
        raise HTTPException(status_code=422, detail=f"before: {exc}") from None
    if page is None:
        raise HTTPException(status_code=404, detail=f"machine {name!r} not found")
    return {"machine": name, "items": page.items, "before": page.before}
