"""`GET /api/schedules`, `GET /api/schedules/{name}` and `POST /api/schedules/{name}/pause`
and `/resume` on real SQLite and PostgreSQL stores: the answers are what the store holds,
a change through the API is a change in the store, unknown names are 404, and the endpoints
follow the API's access rules."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from statemachine_engine.database import ScheduleSpec, Store, Timing, open_store
from statemachine_engine.database.schedules import Schedule
from statemachine_engine.monitoring import UiConfig, create_app

from .conftest import BASE


@pytest.fixture
def client(store: Store, url: str) -> Iterator[TestClient]:
    app = create_app(UiConfig(db_url=url, fallback_interval=0.05))
    with TestClient(app, base_url=BASE) as c:
        yield c


def seed(store: Store) -> None:
    store.add_schedule(ScheduleSpec("cleanup", "cleanup", Timing(every=300), catch_up="all"))
    store.add_schedule(
        ScheduleSpec(
            "nightly",
            "report",
            Timing(cron="0 3 * * *", timezone="Europe/Berlin"),
            payload={"format": "pdf", "to": ["ops"]},
            machine_type="reporter",
            catch_up="none",
        )
    )
    store.add_schedule(ScheduleSpec("hourly", "sync", Timing(every=3600)))
    store.pause_schedule("hourly")


def expected(schedule: Schedule) -> dict[str, Any]:
    return {"when": schedule.spec.timing.describe(), **schedule.to_dict()}


def test_list_shows_every_schedule_as_the_store_holds_it(store: Store, client: TestClient) -> None:
    seed(store)
    answer = client.get("/api/schedules")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["schedules"] == [expected(s) for s in store.list_schedules()]
    by_name = {s["name"]: s for s in body["schedules"]}
    assert sorted(by_name) == ["cleanup", "hourly", "nightly"]
    nightly = by_name["nightly"]
    assert nightly["when"] == "cron 0 3 * * * (Europe/Berlin)"
    assert (nightly["timezone"], nightly["machine_type"], nightly["catch_up"]) == (
        "Europe/Berlin",
        "reporter",
        "none",
    )
    assert nightly["payload"] == {"format": "pdf", "to": ["ops"]}
    assert by_name["cleanup"]["when"] == "every 5m"
    assert by_name["cleanup"]["every_seconds"] == 300
    assert by_name["hourly"]["paused"] is True
    assert by_name["cleanup"]["next_due"] > body["now"]
    assert by_name["cleanup"]["next_due"] % 300 == 0


def test_last_tick_after_firing(store: Store, client: TestClient) -> None:
    from statemachine_engine.clock import VirtualClock

    clock = VirtualClock(store.clock.now())
    moved = open_store(store.url, clock=clock)
    try:
        moved.add_schedule(ScheduleSpec("often", "beat", Timing(every=60)))
        assert client.get("/api/schedules/often").json()["last_tick"] is None
        clock.advance(61)
        moved.fire_schedules()
        stored = moved.get_schedule("often")
        assert stored is not None and stored.last_tick is not None
        assert client.get("/api/schedules/often").json() == expected(stored)
    finally:
        moved.close()


def test_empty_list(client: TestClient) -> None:
    body = client.get("/api/schedules").json()
    assert body["schedules"] == []
    assert isinstance(body["now"], float)


def test_pause_and_resume_change_the_store(store: Store, client: TestClient) -> None:
    seed(store)
    paused = client.post("/api/schedules/cleanup/pause")
    assert paused.status_code == 200, paused.text
    stored = store.get_schedule("cleanup")
    assert stored is not None and stored.paused
    assert paused.json() == expected(stored)

    resumed = client.post("/api/schedules/hourly/resume")
    assert resumed.status_code == 200, resumed.text
    stored = store.get_schedule("hourly")
    assert stored is not None and not stored.paused
    assert stored.next_due > store.clock.now()
    assert resumed.json() == expected(stored)
    assert client.get("/api/schedules/hourly").json() == expected(stored)

    again = client.post("/api/schedules/cleanup/pause")  # pausing twice is no error
    assert again.status_code == 200 and again.json()["paused"] is True


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/schedules/nope/pause"),
        ("post", "/api/schedules/nope/resume"),
        ("get", "/api/schedules/nope"),
    ],
)
def test_unknown_schedule_is_404(store: Store, client: TestClient, method: str, path: str) -> None:
    seed(store)
    before = [s.to_dict() for s in store.list_schedules()]
    answer = getattr(client, method)(path)
    assert answer.status_code == 404
    assert answer.json() == {"error": "schedule 'nope' not found"}
    assert [s.to_dict() for s in store.list_schedules()] == before


def test_schedules_follow_the_api_access_rules(url: str, store: Store) -> None:
    seed(store)
    app = create_app(UiConfig(db_url=url, token="s3cret", host="0.0.0.0"))
    with TestClient(app, base_url=BASE) as c:
        listed = c.get("/api/schedules")
        assert listed.status_code == 401
        assert listed.json() == {"error": "missing or wrong token"}
        assert c.post("/api/schedules/cleanup/pause").status_code == 401
        foreign = c.post(
            "/api/schedules/cleanup/pause",
            headers={"authorization": "Bearer s3cret", "origin": "http://evil.example"},
        )
        assert foreign.status_code == 403
        evil_host = c.get(
            "/api/schedules",
            headers={"authorization": "Bearer s3cret", "host": "127.0.0.1.evil.example"},
        )
        assert evil_host.status_code == 200  # wildcard bind with a token: any host name
        stored = store.get_schedule("cleanup")
        assert stored is not None and not stored.paused
        auth = {"authorization": "Bearer s3cret"}
        assert c.get("/api/schedules", headers=auth).status_code == 200
        ok = c.post("/api/schedules/cleanup/pause", headers=auth)
        assert ok.status_code == 200, ok.text
    stored = store.get_schedule("cleanup")
    assert stored is not None and stored.paused


def test_loopback_server_refuses_foreign_hosts(store: Store, url: str) -> None:
    seed(store)
    app = create_app(UiConfig(db_url=url))
    with TestClient(app, base_url=BASE) as c:
        refused = c.get("/api/schedules", headers={"host": "127.0.0.1.evil.example"})
        assert refused.status_code == 403
        assert (
            c.post("/api/schedules/cleanup/pause", headers={"host": "evil.example"}).status_code
            == 403
        )
    stored = store.get_schedule("cleanup")
    assert stored is not None and not stored.paused


def test_in_the_openapi_schema(client: TestClient) -> None:
    schema = client.get("/api/openapi.json").json()
    paths = schema["paths"]
    assert "get" in paths["/api/schedules"]
    assert "get" in paths["/api/schedules/{name}"]
    assert "post" in paths["/api/schedules/{name}/pause"]
    assert "post" in paths["/api/schedules/{name}/resume"]
    fields = schema["components"]["schemas"]["ScheduleView"]["properties"]
    for field in ("name", "when", "cron", "timezone", "job_type", "payload", "next_due"):
        assert field in fields
    for field in ("machine_type", "catch_up", "paused", "last_tick", "every_seconds"):
        assert field in fields
