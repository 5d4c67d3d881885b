"""`GET /api/machines/{name}/timeline` and the page URLs, on real SQLite and PostgreSQL: every
item once across pages, in order; 404 for an unknown machine; bounded limit; bad cursor."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from statemachine_engine.database import Store, open_store
from statemachine_engine.database.records import OutgoingEvent, Step
from statemachine_engine.monitoring import UiConfig, create_app

from .conftest import BASE, register


@pytest.fixture
def client(url: str) -> Iterator[TestClient]:
    store = open_store(url)
    try:
        seed(store)
    finally:
        store.close()
    app = create_app(UiConfig(db_url=url, fallback_interval=0.05))
    with TestClient(app, base_url=BASE) as c:
        yield c


def seed(store: Store) -> None:
    """worker-1 moves 30 times (every third step at the same time as the one before),
    receives and sends events and holds a job."""
    register(store, "worker-1")
    register(store, "worker-2")
    at = store.clock.now()
    states = ["waiting", "processing"]
    for n in range(1, 31):
        if n % 3:
            at += 0.25
        source, target = states[(n - 1) % 2], states[n % 2]
        out = [OutgoingEvent("worker-2", "ping")] if n % 5 == 0 else []
        store.commit_step(Step("worker-1", at, n, source, target, event="go", outbox=out))
        if n % 7 == 0:
            store.send_event("worker-1", "poke", source="worker-2")
    store.add_job("task", job_id="j1")
    assert store.claim_job("task", "worker-1@h:1", job_id="j1") is not None
    store.fail_job("j1", "worker-1@h:1", "exit code 3: kaboom", retry_delay=None)


def all_pages(client: TestClient, limit: int) -> list[list[dict[str, Any]]]:
    pages: list[list[dict[str, Any]]] = []
    before: str | None = None
    while True:
        params: dict[str, Any] = {"limit": limit}
        if before is not None:
            params["before"] = before
        response = client.get("/api/machines/worker-1/timeline", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["machine"] == "worker-1"
        pages.append(body["items"])
        before = body["before"]
        if before is None:
            return pages
        assert len(pages) < 100, "the cursor does not move"


def test_timeline_pages_hold_every_item_once_in_order(client: TestClient) -> None:
    whole = client.get("/api/machines/worker-1/timeline?limit=500").json()
    assert whole["before"] is None
    items = whole["items"]
    kinds = {i["kind"] for i in items}
    assert kinds == {"transition", "event_sent", "event_received", "job", "machine"}
    assert sum(i["kind"] == "transition" for i in items) == 30
    times = [i["at"] for i in items]
    assert times == sorted(times, reverse=True)
    failed = next(i for i in items if i["kind"] == "job")
    assert (failed["job_id"], failed["status"], failed["error"]) == (
        "j1",
        "failed",
        "exit code 3: kaboom",
    )
    for limit in (1, 4, 13):
        pages = all_pages(client, limit)
        assert [i["key"] for p in pages for i in p] == [i["key"] for i in items]
        assert all(len(p) == limit for p in pages[:-1])


def test_timeline_errors(client: TestClient) -> None:
    response = client.get("/api/machines/nobody/timeline")
    assert response.status_code == 404
    assert response.json() == {"error": "machine 'nobody' not found"}
    assert client.get("/api/machines/worker-1/timeline?limit=0").status_code == 422
    assert client.get("/api/machines/worker-1/timeline?limit=501").status_code == 422
    bad = client.get("/api/machines/worker-1/timeline?before=garbage")
    assert bad.status_code == 422
    assert bad.json()["error"] == "before: cursor 'garbage' is not time:source:id"
    schema = client.get("/api/openapi.json").json()
    assert "/api/machines/{name}/timeline" in schema["paths"]


@pytest.mark.parametrize("path", ["/machines/worker-1", "/jobs/j1", "/machines/not-yet"])
def test_page_urls_return_the_app(client: TestClient, path: str) -> None:
    plain = {"accept-encoding": "identity"}  # HEAD's length is the uncompressed body's
    page = client.get(path, headers=plain)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/static/app.js">' in page.text
    head = client.head(path, headers=plain)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == page.headers["content-length"]
