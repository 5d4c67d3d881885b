"""`GET /api/jobs/{id}/timeline`: the job and its attempts, in the documented shape."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from statemachine_engine.database.records import ActionRun, JobAck, OutgoingEvent, Step
from statemachine_engine.database.sqlite import SQLiteStore

from .conftest import make_client

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$")
OWNER = "worker-1@host:7"


def attempt_steps(store: SQLiteStore, job_id: str, attempt: int, code: int) -> None:
    """What the engine commits for one attempt: the claim's transition, then the ack."""
    now = store.clock.now()
    store.commit_step(
        Step("worker-1", now, 1, "waiting", "processing", "new_job", job_id=job_id, attempt=attempt)
    )
    run = ActionRun(
        job_id,
        attempt,
        "processing",
        "bash",
        now,
        store.clock.now(),
        command=f"./work.sh '{job_id}'",
        exit_code=code,
        stdout_tail="working\n",
        stderr_tail="" if code == 0 else "no disk\n",
    )
    ack = (
        JobAck(job_id, OWNER, "completed")
        if code == 0
        else JobAck(job_id, OWNER, "failed", error="exit code 3: no disk", retry_delay=0.0)
    )
    store.commit_step(
        Step(
            "worker-1",
            store.clock.now(),
            2,
            "processing",
            "waiting",
            "job_done" if code == 0 else "error",
            job_id=job_id,
            attempt=attempt,
            job_ack=ack,
            outbox=[OutgoingEvent("reporter", "finished")],
            actions=[run],
        )
    )


def test_timeline_of_a_job_retried_once(seeded: SQLiteStore, db_path: Path) -> None:
    seeded.add_job("render", {"n": 1}, job_id="J1")
    for attempt, code in ((1, 3), (2, 0)):
        assert seeded.claim_job("render", OWNER) is not None
        attempt_steps(seeded, "J1", attempt, code)

    with make_client(db_path) as client:
        body = client.get("/api/jobs/J1/timeline").json()
        assert body["job"] == client.get("/api/jobs/J1").json()
    assert set(body) == {"job", "attempts"}
    first, second = body["attempts"]
    assert set(first) == {
        "attempt",
        "worker",
        "started_at",
        "ended_at",
        "outcome",
        "error",
        "transitions",
        "events_sent",
        "actions",
    }
    assert (first["attempt"], first["worker"], first["outcome"]) == (1, "worker-1", "failed")
    assert first["error"] == "exit code 3: no disk"
    assert (second["attempt"], second["outcome"], second["error"]) == (2, "completed", None)
    for attempt in (first, second):
        assert ISO.match(attempt["started_at"]) and ISO.match(attempt["ended_at"])
        moves = attempt["transitions"]
        assert [(t["from"], t["to"]) for t in moves] == [
            ("waiting", "processing"),
            ("processing", "waiting"),
        ]
        for move in moves:
            assert set(move) == {"id", "machine", "from", "to", "event", "at"}
            assert isinstance(move["id"], int) and move["machine"] == "worker-1"
            assert ISO.match(move["at"])
        (sent,) = attempt["events_sent"]
        assert set(sent) == {"id", "target", "event", "at"}
        assert (sent["target"], sent["event"]) == ("reporter", "finished")
        (action,) = attempt["actions"]
        assert set(action) == {
            "state",
            "action",
            "command",
            "exit_code",
            "stdout_tail",
            "stderr_tail",
            "started_at",
            "ended_at",
        }
        assert (action["state"], action["action"]) == ("processing", "bash")
        assert action["command"] == "./work.sh 'J1'"
        assert ISO.match(action["started_at"]) and ISO.match(action["ended_at"])
    assert (first["actions"][0]["exit_code"], first["actions"][0]["stderr_tail"]) == (
        3,
        "no disk\n",
    )
    assert second["actions"][0]["exit_code"] == 0


def test_a_running_attempt_has_no_end(seeded: SQLiteStore, client: TestClient) -> None:
    seeded.add_job("render", job_id="J2")
    assert seeded.claim_job("render", OWNER) is not None
    (attempt,) = client.get("/api/jobs/J2/timeline").json()["attempts"]
    assert (attempt["outcome"], attempt["ended_at"]) == ("running", None)
    assert attempt["transitions"] == attempt["events_sent"] == attempt["actions"] == []


def test_unknown_job_is_a_json_404(client: TestClient) -> None:
    response = client.get("/api/jobs/nope/timeline")
    assert response.status_code == 404
    assert response.json() == {"error": "job 'nope' not found"}


def test_the_endpoint_is_in_the_openapi_schema(client: TestClient) -> None:
    paths = client.get("/api/openapi.json").json()["paths"]
    assert "get" in paths["/api/jobs/{job_id}/timeline"]
