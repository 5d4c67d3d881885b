"""`GET /api/problems`, bulk `POST /api/jobs/retry` and `/api/jobs/cancel` (with edited
data), and `GET /api/definitions`, on real SQLite and PostgreSQL stores. Bad input changes
nothing and says what was wrong."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from statemachine_engine.database import Store, open_store
from statemachine_engine.monitoring import UiConfig, create_app

from .conftest import BASE, WORKER, register


@pytest.fixture
def client(store: Store, url: str) -> Iterator[TestClient]:
    app = create_app(UiConfig(db_url=url, fallback_interval=0.05))
    with TestClient(app, base_url=BASE) as c:
        yield c


def fail(store: Store, job_id: str, error: str = "exit 3: kaboom") -> None:
    """Fail a job for good (one attempt allowed)."""
    store.add_job("render", {"n": job_id}, job_id=job_id, max_attempts=1)
    assert store.claim_job("render", "w@h:1", job_id=job_id) is not None
    store.fail_job(job_id, "w@h:1", error, retry_delay=0)


def statuses(store: Store) -> dict[str, str]:
    return {j.job_id: j.status for j in store.list_jobs(limit=100)}


def test_problems_lists_failed_jobs_events_and_delayed_jobs(
    store: Store, client: TestClient
) -> None:
    register(store, "worker-1")
    fail(store, "f0", "older")
    fail(store, "f1", "line one\nline two")
    store.add_job("render", job_id="ok1")
    store.add_job("render", job_id="later", run_after=store.clock.now() + 3600)
    event = store.send_event("worker-1", "poke")
    assert store.next_event("worker-1") is not None
    store.mark_event(event.id, "unhandled")
    body = client.get("/api/problems").json()
    assert [j["job_id"] for j in body["failed_jobs"]] == ["f1", "f0"]  # last failed first
    assert body["failed_jobs"][0]["error"] == "line one\nline two"
    assert body["failed_total"] == 2
    assert [(e["event_type"], e["status"]) for e in body["events"]] == [("poke", "unhandled")]
    assert [j["job_id"] for j in body["delayed_jobs"]] == ["later"]
    assert body["delayed_jobs"][0]["run_after"] > body["now"]


def test_bulk_retry_and_cancel(store: Store, client: TestClient) -> None:
    fail(store, "f1")
    fail(store, "f2")
    store.add_job("render", job_id="p1")
    store.add_job("render", job_id="p2")
    done = client.post("/api/jobs/retry", json={"job_ids": ["f1", "f2"]})
    assert done.status_code == 200, done.text
    assert done.json()["count"] == 2
    cancelled = client.post("/api/jobs/cancel", json={"job_ids": ["p1", "p2"]})
    assert cancelled.status_code == 200, cancelled.text
    assert statuses(store) == {
        "f1": "pending",
        "f2": "pending",
        "p1": "cancelled",
        "p2": "cancelled",
    }


def test_edit_then_retry_replaces_the_data(store: Store, client: TestClient) -> None:
    fail(store, "f1")
    done = client.post("/api/jobs/retry", json={"job_ids": ["f1"], "data": {"f1": {"n": 2}}})
    assert done.status_code == 200, done.text
    job = store.get_job("f1")
    assert job is not None and (job.status, job.data, job.attempts) == ("pending", {"n": 2}, 0)


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/api/jobs/retry", {"job_ids": ["f1", "nope"]}, 404, "no job 'nope'; nothing changed"),
        ("/api/jobs/cancel", {"job_ids": ["p1", "nope"]}, 404, "no job 'nope'; nothing changed"),
        (
            "/api/jobs/retry",
            {"job_ids": ["f1", "p1"]},
            409,
            "job 'p1' is pending; only failed or cancelled jobs can be retried; nothing changed",
        ),
        (
            "/api/jobs/cancel",
            {"job_ids": ["p1", "f1"]},
            409,
            "job 'f1' is failed; only pending jobs can be cancelled; nothing changed",
        ),
        ("/api/jobs/retry", {"job_ids": ["f1", "f1"]}, 409, "job 'f1' is listed twice"),
        ("/api/jobs/retry", {"job_ids": []}, 422, "body.job_ids: List should have at least 1"),
        ("/api/jobs/retry", {"ids": ["f1"]}, 422, "body.job_ids: Field required"),
        (
            "/api/jobs/retry",
            {"job_ids": ["f1"], "data": {"p1": {}}},
            422,
            "data: job 'p1' is not in job_ids; nothing changed",
        ),
        ("/api/jobs/retry", b'{"job_ids": ["f1"], "data": {"f1": {', 400, "not valid JSON"),
        ("/api/jobs/cancel", b"[1, 2", 400, "not valid JSON"),
    ],
)
def test_bad_input_changes_nothing(
    store: Store, client: TestClient, path: str, body: Any, status: int, message: str
) -> None:
    fail(store, "f1")
    store.add_job("render", {"n": 0}, job_id="p1")
    before = {j.job_id: j.to_dict() for j in store.list_jobs(limit=100)}
    if isinstance(body, bytes):
        answer = client.post(path, content=body, headers={"content-type": "application/json"})
    else:
        answer = client.post(path, json=body)
    assert answer.status_code == status, answer.text
    assert message in answer.json()["error"]
    assert {j.job_id: j.to_dict() for j in store.list_jobs(limit=100)} == before


def test_mutations_follow_the_api_access_rules(url: str, store: Store) -> None:
    fail(store, "f1")
    app = create_app(UiConfig(db_url=url, token="s3cret", host="0.0.0.0"))
    with TestClient(app, base_url=BASE) as c:
        refused = c.post("/api/jobs/retry", json={"job_ids": ["f1"]})
        assert refused.status_code == 401
        foreign = c.post(
            "/api/jobs/retry",
            json={"job_ids": ["f1"]},
            headers={"authorization": "Bearer s3cret", "origin": "http://evil.example"},
        )
        assert foreign.status_code == 403
        assert statuses(store) == {"f1": "failed"}
        ok = c.post(
            "/api/jobs/retry", json={"job_ids": ["f1"]}, headers={"authorization": "Bearer s3cret"}
        )
        assert ok.status_code == 200, ok.text
    assert statuses(store) == {"f1": "pending"}


def test_definition_versions_are_named_by_first_seen_time(store: Store, client: TestClient) -> None:
    register(store, "worker-1")
    register(store, "worker-2", WORKER.replace("stop]", "stop, pause]"))
    versions = client.get("/api/definitions").json()["definitions"]
    assert [(v["name"], v["version"]) for v in versions] == [("Worker", 1), ("Worker", 2)]
    first = versions[0]
    assert first["short"] == first["digest"][:8]
    assert first["label"].startswith(f"Worker v1 · {first['short']} · first seen 20")
    assert first["label"].endswith(" UTC")


def test_machines_carry_health_from_the_stream_and_the_leases(url: str) -> None:
    """Health through the API on both backends: a second start without a stop between is a
    restart; a job held past its lease by a live machine is an overdue lease; a live one
    with neither is ok."""
    import os
    import time

    from statemachine_engine.clock import VirtualClock
    from statemachine_engine.database.liveness import process_start, this_host

    early = VirtualClock(time.time() - 600)  # claims made 10 minutes ago: leases long over
    store = open_store(url, clock=early)
    try:
        for name in ("w-restarted", "w-late", "w-fine"):
            for _ in range(2 if name == "w-restarted" else 1):
                store.register_machine(
                    name,
                    "waiting",
                    pid=os.getpid(),
                    hostname=this_host(),
                    pid_start=process_start(os.getpid()),
                    config_path="w.yaml",
                    definition_name="Worker",
                    definition_hash="d" * 64,
                    definition_text=WORKER,
                    at=time.time(),
                )
        store.add_job("render", job_id="held")
        owner = f"w-late@{this_host()}:{os.getpid()}"
        assert store.claim_job("render", owner, job_id="held", lease_seconds=30) is not None
    finally:
        store.close()
    app = create_app(UiConfig(db_url=url, fallback_interval=0.05))
    expected = {"w-restarted": "restarting", "w-late": "lease_overdue", "w-fine": "ok"}
    with TestClient(app, base_url=BASE) as c:
        # Restarts are read from the stream, which PostgreSQL holds back while any older
        # transaction on the server (another test's) is open: wait for the rows, not a time.
        deadline = time.monotonic() + 30
        while True:
            listed = c.get("/api/machines").json()["machines"]
            machines = {m["machine_name"]: m for m in listed}
            kinds = {name: m["health"]["kind"] for name, m in machines.items()}
            if kinds == expected or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        one = c.get("/api/machines/w-late").json()["machine"]
    assert kinds == expected
    assert machines["w-late"]["health"]["detail"].startswith("holds job held past its lease")
    assert one["health"] == machines["w-late"]["health"]
    assert all(m["alive"] is True for m in machines.values())
