"""The WebSocket stream: snapshot then live rows, doorbell wake-ups, garbage from clients."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from statemachine_engine.database.sqlite import SQLiteStore
from statemachine_engine.monitoring import app as app_module
from statemachine_engine.monitoring.stream import _last_id
from statemachine_engine.transport import UI_DOORBELL, ring

from .conftest import register, step  # type: ignore[import-not-found]


def recv(ws: Any, timeout: float = 5.0) -> dict[str, Any]:
    return dict(json.loads(ws.recv(timeout=timeout)))


def reply(ws: Any) -> dict[str, Any]:
    """The server's answer to a client message: pushed liveness changes may come first."""
    while (msg := recv(ws))["type"] == "machines":
        pass
    return msg


def next_events(ws: Any, timeout: float = 5.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        msg = recv(ws, max(0.01, deadline - time.monotonic()))
        if msg["type"] == "events":
            return list(msg["events"])


def test_late_client_gets_snapshot_then_stream(live: Any, seeded: SQLiteStore) -> None:
    with connect(live.ws_url) as ws:
        snap = recv(ws)
        assert snap["type"] == "snapshot"
        assert [m["machine_name"] for m in snap["machines"]] == ["worker-1"]
        assert [e["kind"] for e in snap["history"]] == ["machine_started", "state_change"]
        assert snap["last_id"] == snap["history"][-1]["id"]
        assert "pending" in snap["job_counts"]
        step(seeded, "worker-1", "processing", "waiting", "job_done", 2)
        (event,) = next_events(ws)
        assert event["kind"] == "state_change" and event["id"] == snap["last_id"] + 1
        assert event["payload"]["to_state"] == "waiting"


def test_doorbell_wakes_the_tailer_without_polling(live_factory: Any, seeded: SQLiteStore) -> None:
    live = live_factory(fallback_interval=30.0)
    with connect(live.ws_url) as ws:
        recv(ws)
        start = time.monotonic()
        step(seeded, "worker-1", "processing", "waiting", "job_done", 2)
        assert ring(UI_DOORBELL, {"kind": "event"})
        (event,) = next_events(ws, timeout=2)
        assert event["payload"]["event"] == "job_done"
        assert time.monotonic() - start < 0.1


def test_engine_commit_rings_the_ui(live_factory: Any, db_path: Path) -> None:
    """The engine's hook: a state change of a real machine reaches the stream at once."""
    import asyncio

    from statemachine_engine.config.loader import parse_definition
    from statemachine_engine.core import ActionLoader, StateMachineEngine

    text = (
        "name: T\ninitial_state: a\nstates: [a, b]\nevents: [go]\n"
        "transitions:\n  - {from: a, to: b, event: go}\n"
    )
    live = live_factory(fallback_interval=30.0)
    store = SQLiteStore(str(db_path))

    async def run() -> None:
        loader = ActionLoader()
        engine = StateMachineEngine(
            parse_definition(text, "t.yaml", loader), "tee", store=store, loader=loader
        )
        task = asyncio.create_task(engine.run())
        with connect(live.ws_url) as ws:
            recv(ws)
            await asyncio.sleep(0.2)
            store.send_event("tee", "go")
            ring("tee", {"kind": "event"})
            kinds: list[str] = []
            while "state_change" not in kinds:
                kinds += [e["kind"] for e in await asyncio.to_thread(next_events, ws, 2)]
        await asyncio.wait_for(task, 5)

    try:
        asyncio.run(run())
    finally:
        store.close()


def test_malformed_messages_get_an_error_reply(live: Any, seeded: SQLiteStore) -> None:
    with connect(live.ws_url) as ws:
        recv(ws)
        for bad, expected in [
            ("not json", "invalid JSON"),
            ("[1, 2]", "JSON object"),
            ('{"type": "launch"}', "unknown message type"),
            ("{}", "unknown message type"),
        ]:
            ws.send(bad)
            answer = reply(ws)
            assert answer["type"] == "error" and expected in answer["error"]
        ws.send('{"type": "ping", "id": 7}')
        assert reply(ws) == {"type": "pong", "id": 7}


@pytest.mark.parametrize(
    ("payload", "code"), [(b"\x00\x01binary", 1003), ("x" * (10 * 1024 * 1024), 1009)]
)
def test_offenders_are_closed_and_others_keep_streaming(
    live: Any, seeded: SQLiteStore, payload: Any, code: int
) -> None:
    with connect(live.ws_url) as good, connect(live.ws_url, max_size=None) as bad:
        recv(good)
        recv(bad)
        with contextlib.suppress(ConnectionClosed):
            bad.send(payload)
        with pytest.raises(ConnectionClosed) as info:
            while True:
                bad.recv(timeout=5)
        assert info.value.rcvd is not None and info.value.rcvd.code == code
        step(seeded, "worker-1", "processing", "waiting", "job_done", 2)
        assert next_events(good)[0]["payload"]["to_state"] == "waiting"
    assert live.server.started  # the server stays up


def test_a_client_that_never_reads_is_dropped(
    live: Any, seeded: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app_module, "SEND_TIMEOUT", 0.5)
    hub = live.server.config.loaded_app.app.app.state.hub  # guard -> fastapi -> hub
    with connect(live.ws_url, max_size=None) as good:
        recv(good)
        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.connect(("127.0.0.1", live.port))
        slow.sendall(
            f"GET /api/stream HTTP/1.1\r\nHost: {live.host}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        try:
            deadline = time.monotonic() + 20
            while len(hub.clients) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            blob = "x" * 200_000
            for _ in range(60):
                seeded.add_realtime("worker-1", "activity", {"message": blob})
                ring(UI_DOORBELL, {"kind": "event"})
                good.recv(timeout=5)
            while len(hub.clients) > 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(hub.clients) == 1  # the sleeper was dropped, `good` remains
            step(seeded, "worker-1", "processing", "waiting", "job_done", 2)
            assert next_events(good)[-1]["kind"] == "state_change"
        finally:
            slow.close()


def test_last_id_probe(store: SQLiteStore) -> None:
    assert _last_id(store) == 0
    for i in range(37):
        store.add_realtime(None, "activity", {"message": str(i)})
    assert _last_id(store) == 37
    register(store, "m")
    assert _last_id(store) == 38
