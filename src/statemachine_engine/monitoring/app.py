"""The ASGI application: REST API, WebSocket stream and the static page, behind the guard."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import mimetypes
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from statemachine_engine import __version__
from statemachine_engine.monitoring.api import router
from statemachine_engine.monitoring.db import Db
from statemachine_engine.monitoring.history import router as history_router
from statemachine_engine.monitoring.metrics import CONTENT_TYPE, exposition
from statemachine_engine.monitoring.problems import router as problems_router
from statemachine_engine.monitoring.schedules import router as schedules_router
from statemachine_engine.monitoring.security import MAX_BODY_BYTES, Guard, GuardMiddleware
from statemachine_engine.monitoring.stream import FALLBACK_INTERVAL, Client, Hub
from statemachine_engine.transport import UI_DOORBELL

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
MAX_WS_MESSAGE = 64 * 1024
SEND_TIMEOUT = 5.0
# Responses at least this big are gzipped for clients that accept it (the page's scripts and
# the API's lists); smaller ones cost more to compress than they save.
GZIP_MIN_BYTES = 1024


@dataclass(frozen=True)
class UiConfig:
    """How the server runs: store URL, bind host (for the Host check), token and limits."""

    db_url: str | None = None
    host: str = "127.0.0.1"
    token: str | None = None
    max_body: int = MAX_BODY_BYTES
    fallback_interval: float = FALLBACK_INTERVAL
    doorbell_name: str | None = UI_DOORBELL
    static_dir: Path = STATIC_DIR


def static_file(root: Path, relative: str) -> Path | None:
    """The file `relative` names inside `root`, or None if it is missing or escapes `root`."""
    if not relative or "\x00" in relative or "\\" in relative or relative.startswith("/"):
        return None
    base = root.resolve()
    try:
        target = (base / relative).resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        return None
    if not target.is_relative_to(base) or not target.is_file():
        return None
    return target


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_app(config: UiConfig | None = None) -> Any:
    """Build the app; the store opens and the tailer starts in the lifespan."""
    config = config or UiConfig()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = await asyncio.to_thread(Db, config.db_url)
        tail_db = await asyncio.to_thread(Db, config.db_url, name="ui-tail")
        hub = Hub(
            tail_db,
            fallback_interval=config.fallback_interval,
            doorbell_name=config.doorbell_name,
        )
        await hub.start()
        app.state.db, app.state.hub = db, hub
        try:
            yield
        finally:
            await hub.stop()
            await asyncio.to_thread(db.close)
            await asyncio.to_thread(tail_db.close)

    app = FastAPI(
        title="statemachine-ui",
        version=__version__,
        description="Live monitoring of statemachine-engine machines, jobs and events.",
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/openapi.json",
        lifespan=lifespan,
    )
    app.include_router(router)
    app.include_router(history_router)
    app.add_middleware(GZipMiddleware, minimum_size=GZIP_MIN_BYTES)
    app.include_router(problems_router)
    app.include_router(schedules_router)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return _error(400, "request body is not valid JSON")
        first = errors[0] if errors else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _error(422, f"{where}: {first.get('msg', 'invalid input')}")

    @app.websocket("/api/stream")
    async def stream(websocket: WebSocket) -> None:
        await _serve_stream(websocket, websocket.app.state.hub)

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        db: Db = request.app.state.db
        snapshot = await db.call(lambda store: store.metrics_snapshot())
        return Response(exposition(snapshot), media_type=CONTENT_TYPE)

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def index() -> Response:
        return _static(config.static_dir, "index.html")

    @app.api_route("/favicon.ico", methods=["GET", "HEAD"], include_in_schema=False)
    async def favicon() -> Response:
        return _static(config.static_dir, "favicon.svg")

    # The page's own URLs: the app routes on them itself (static/router.js).
    @app.api_route("/machines/{name}", methods=["GET", "HEAD"], include_in_schema=False)
    @app.api_route("/jobs/{job_id}", methods=["GET", "HEAD"], include_in_schema=False)
    async def app_page() -> Response:
        return _static(config.static_dir, "index.html")

    @app.api_route("/static/{path:path}", methods=["GET", "HEAD"], include_in_schema=False)
    async def static(path: str) -> Response:
        return _static(config.static_dir, path)

    return GuardMiddleware(
        app, Guard(bind_host=config.host, token=config.token, max_body=config.max_body)
    )


def _static(root: Path, relative: str) -> Response:
    target = static_file(root, relative)
    if target is None:
        return _error(404, "not found")
    media = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    if target.suffix in (".js", ".mjs"):
        media = "text/javascript"
    return FileResponse(target, media_type=media, headers={"cache-control": "no-cache"})


async def _sender(websocket: WebSocket, client: Client) -> None:
    while True:
        message = await client.queue.get()
        if message.get("type") == "overflow":
            await websocket.close(code=1008, reason="client too slow")
            return
        if message.get("type") == "bye":
            await websocket.close(code=1001)
            return
        await asyncio.wait_for(websocket.send_text(json.dumps(message)), SEND_TIMEOUT)


def _reply(message: Any) -> dict[str, Any] | None:
    if not isinstance(message, dict):
        return {"type": "error", "error": "message must be a JSON object"}
    kind = message.get("type")
    if kind == "ping":
        return {
            "type": "pong",
            "id": message.get("id") if isinstance(message.get("id"), int) else None,
        }
    return {"type": "error", "error": f"unknown message type {str(kind)[:40]!r}"}


async def _serve_stream(websocket: WebSocket, hub: Hub) -> None:
    """Snapshot first, then live rows; client messages get a reply, garbage an error or a close."""
    await websocket.accept()
    client = hub.subscribe()
    sender: asyncio.Task[None] | None = None
    try:
        snapshot = await hub.snapshot()
        await websocket.send_text(json.dumps(snapshot))
        seen = snapshot["last_id"]
        # Drop queued rows the snapshot's history already holds.
        pending: list[dict[str, Any]] = []
        while not client.queue.empty():
            msg = client.queue.get_nowait()
            if msg.get("type") == "events":
                msg = {**msg, "events": [e for e in msg["events"] if e["id"] > seen]}
                if not msg["events"]:
                    continue
            pending.append(msg)
        for msg in pending:
            client.queue.put_nowait(msg)
        sender = asyncio.create_task(_sender(websocket, client))
        while True:
            receiver = asyncio.ensure_future(websocket.receive())
            done, _ = await asyncio.wait({receiver, sender}, return_when=asyncio.FIRST_COMPLETED)
            if sender in done:
                receiver.cancel()
                return
            message = receiver.result()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("bytes") is not None:
                await websocket.close(code=1003, reason="binary frames are not supported")
                return
            text = message.get("text") or ""
            if len(text) > MAX_WS_MESSAGE:
                await websocket.close(code=1009, reason="message too big")
                return
            try:
                decoded = json.loads(text)
            except ValueError:
                reply: dict[str, Any] | None = {"type": "error", "error": "invalid JSON"}
            else:
                reply = _reply(decoded)
            if reply is not None:
                client.push(reply)
    except (WebSocketDisconnect, RuntimeError, TimeoutError) as exc:
        log.debug("websocket closed: %s", exc)
    finally:
        hub.unsubscribe(client)
        if sender is not None:
            if not sender.done():
                sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender  # also retrieves a send error (timeout, closed socket)
