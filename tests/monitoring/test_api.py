"""Every REST endpoint, good input and bad."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from statemachine_engine.database.sqlite import SQLiteStore
from statemachine_engine.transport import Doorbell


def test_openapi_lists_every_endpoint(client: TestClient) -> None:
    schema = client.get("/api/openapi.json").json()
    paths = set(schema["paths"])
    assert {
        "/api/health",
        "/api/machines",
        "/api/machines/{name}",
        "/api/machines/{name}/diagram",
        "/api/machines/{name}/events",
        "/api/definitions/{digest}",
        "/api/jobs",
        "/api/jobs/counts",
        "/api/jobs/{job_id}",
        "/api/jobs/{job_id}/retry",
        "/api/jobs/{job_id}/cancel",
        "/api/events",
        "/api/transitions",
        "/api/realtime",
    } <= paths
    assert client.get("/docs").status_code == 404  # Swagger UI would load from a CDN


def test_health(client: TestClient) -> None:
    body = client.get("/api/health").json()
    assert body["ok"] is True and body["last_id"] >= 2


def test_machines_and_one_machine(client: TestClient) -> None:
    (m,) = client.get("/api/machines").json()["machines"]
    assert m["machine_name"] == "worker-1"
    assert m["current_state"] == "processing"
    assert m["state_entered_at"] is not None
    assert m["pid"] == 0 and m["alive"] is None  # pid 0: unknown
    one = client.get("/api/machines/worker-1").json()
    assert one["machine"]["previous_state"] == "waiting"
    assert [t["to_state"] for t in one["transitions"]] == ["processing"]
    assert client.get("/api/machines/nope").status_code == 404
    assert client.get("/api/machines/worker-1?limit=0").status_code == 422


def test_diagram_and_definition(client: TestClient) -> None:
    d = client.get("/api/machines/worker-1/diagram").json()
    assert "stateDiagram-v2\n" in d["mermaid"]
    assert "s0__ --> s1__: new_job" in d["mermaid"]
    assert "any__ --> s2__: stop" in d["mermaid"]
    assert d["current_state"] == "processing" and d["last_event"] == "new_job"
    assert d["ids"] == {"waiting": "s0__", "processing": "s1__", "done": "s2__"}
    assert [t["edge"] for t in d["transitions"]] == [1, 2, 3]
    assert d["template"] is True
    assert [c["title"] for c in d["columns"]] == ["waiting", "Busy", "done"]
    same = client.get(f"/api/definitions/{d['digest']}").json()
    assert same["mermaid"] == d["mermaid"]
    assert client.get("/api/definitions/" + "0" * 64).status_code == 404
    assert client.get("/api/machines/nope/diagram").status_code == 404


def test_a_stored_definition_that_no_longer_validates_is_422(
    client: TestClient, seeded: SQLiteStore
) -> None:
    seeded.register_machine(
        "odd",
        "a",
        pid=0,
        hostname="localhost",
        config_path="odd.yaml",
        definition_name="odd",
        definition_hash="f" * 64,
        definition_text="name: odd\nstates: [a]\n",
        at=seeded.clock.now(),
    )
    r = client.get("/api/machines/odd/diagram")
    assert r.status_code == 422 and "invalid" in r.json()["error"]


def test_jobs_paging_filters_counts_and_detail(client: TestClient) -> None:
    ids = [
        client.post("/api/jobs", json={"job_type": "t", "data": {"i": i}}).json()["job_id"]
        for i in range(5)
    ]
    client.post("/api/jobs", json={"job_type": "other"})
    page = client.get("/api/jobs", params={"type": "t", "limit": 2, "offset": 2}).json()
    assert page["total"] == 5 and len(page["jobs"]) == 2
    assert page["counts"]["pending"] == 5
    assert client.get("/api/jobs", params={"status": "pending"}).json()["total"] == 6
    assert client.get("/api/jobs/counts").json()["pending"] == 6
    job = client.get(f"/api/jobs/{ids[0]}").json()
    assert job["data"] == {"i": 0} and job["status"] == "pending"
    assert client.get("/api/jobs/missing").status_code == 404
    assert client.get("/api/jobs", params={"status": "bogus"}).status_code == 422
    assert client.get("/api/jobs", params={"limit": 100000}).status_code == 422


def test_add_job_defaults_and_bad_input(client: TestClient) -> None:
    r = client.post("/api/jobs", json={"job_type": "t", "job_id": "j1", "priority": 2})
    assert r.status_code == 201
    assert r.json()["data"] == {} and r.json()["priority"] == 2
    assert client.post("/api/jobs", json={"job_type": "t", "job_id": "j1"}).status_code == 409
    bad_json = client.post(
        "/api/jobs", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert bad_json.status_code == 400 and "JSON" in bad_json.json()["error"]
    assert client.post("/api/jobs", json={"job_type": ""}).status_code == 422
    assert client.post("/api/jobs", json={"job_type": "t", "evil": 1}).status_code == 422
    assert client.post("/api/jobs", json=[1, 2]).status_code == 422


def test_oversize_body_is_refused(client: TestClient) -> None:
    big = {"job_type": "t", "data": "x" * (1024 * 1024 + 10)}
    r = client.post("/api/jobs", json=big)
    assert r.status_code == 413
    assert client.get("/api/jobs").json()["total"] == 0

    def chunks() -> Any:
        yield b'{"job_type": "t", "data": "'
        for _ in range(20):
            yield b"y" * 65536
        yield b'"}'

    chunked = client.post(
        "/api/jobs", content=chunks(), headers={"content-type": "application/json"}
    )
    assert chunked.status_code == 413


def test_retry_and_cancel(client: TestClient, seeded: SQLiteStore) -> None:
    client.post("/api/jobs", json={"job_type": "t", "job_id": "a"})
    assert client.post("/api/jobs/a/cancel").json()["status"] == "cancelled"
    assert client.post("/api/jobs/a/cancel").status_code == 409
    assert client.post("/api/jobs/a/retry").json()["status"] == "pending"
    assert client.post("/api/jobs/a/retry").status_code == 409
    assert client.post("/api/jobs/missing/retry").status_code == 404
    assert client.post("/api/jobs/missing/cancel").status_code == 404


async def _noop() -> None:
    return None


def test_send_event_stores_and_rings(client: TestClient, seeded: SQLiteStore) -> None:
    received: list[dict[str, Any]] = []
    bell = Doorbell("worker-1", received.append)
    client.portal.call(bell.start)  # type: ignore[union-attr]
    try:
        r = client.post(
            "/api/machines/worker-1/events", json={"event_type": "go", "payload": {"a": 1}}
        )
        assert r.status_code == 201
        body = r.json()
        assert body["event_type"] == "go" and body["payload"] == {"a": 1}
        assert body["source_machine"] == "statemachine-ui"
        assert body["woken"] is True
        client.portal.call(_noop)  # type: ignore[union-attr]
    finally:
        client.portal.call(bell.close)  # type: ignore[union-attr]
    events = client.get("/api/events", params={"target": "worker-1"}).json()["events"]
    assert [e["event_type"] for e in events] == ["go"]
    assert client.get("/api/events", params={"status": "pending"}).json()["events"]
    assert client.get("/api/events", params={"status": "nope"}).status_code == 422
    assert client.post("/api/machines/ghost/events", json={"event_type": "go"}).status_code == 404
    assert client.post("/api/machines/worker-1/events", json={}).status_code == 422


def test_transitions_and_realtime(client: TestClient) -> None:
    rows = client.get("/api/transitions", params={"machine": "worker-1"}).json()["transitions"]
    assert rows[0]["event"] == "new_job"
    stream = client.get("/api/realtime", params={"after_id": 0}).json()["events"]
    assert [e["kind"] for e in stream] == ["machine_started", "state_change"]
    assert client.get("/api/realtime", params={"after_id": stream[-1]["id"]}).json()["events"] == []
    assert client.get("/api/realtime", params={"after_id": -1}).status_code == 422


def test_unknown_routes_are_json_404(client: TestClient) -> None:
    r = client.get("/api/nothing")
    assert r.status_code == 404 and r.json() == {"error": "Not Found"}


def test_new_job_ids_and_event_names_follow_the_name_rule(client: TestClient) -> None:
    for bad in ("a/b", "a\nb", "a\u202eb", "x" * 101):
        r = client.post("/api/jobs", json={"job_type": "t", "job_id": bad})
        assert r.status_code == 422, r.text
        assert "characters" in r.text
        r = client.post("/api/machines/worker/events", json={"event_type": bad})
        assert r.status_code == 422, r.text
    r = client.post("/api/jobs", json={"job_type": "t", "job_id": "job:1.a-b"})
    assert r.status_code == 201
    assert client.post("/api/jobs/job:1.a-b/cancel").status_code == 200
