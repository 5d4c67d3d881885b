"""`GET /metrics`: scraped through the app, parsed with prometheus_client's parser and checked
against the database, on real SQLite and PostgreSQL stores."""

from __future__ import annotations

import itertools
import os
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from statemachine_engine.database import Store
from statemachine_engine.database.metrics import STATE_SECONDS_BUCKETS
from statemachine_engine.database.postgres import PostgresStore
from statemachine_engine.database.records import Step
from statemachine_engine.database.sqlite import SQLiteStore
from statemachine_engine.monitoring import UiConfig, create_app

from .conftest import BASE, register

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def rows(store: Store, sql: str) -> list[dict[str, Any]]:
    """Plain SQL straight at the database, independent of the statements under test."""
    if isinstance(store, SQLiteStore):
        return store.conn.rows(sql)
    assert isinstance(store, PostgresStore)
    return [dict(r) for r in store.conn.read(lambda tx: tx.rows(sql))]


def seed(store: Store) -> None:
    """Two machines (one live, one stopped), jobs in every outcome, events, a history."""
    register(store, "worker-1", pid=os.getpid())
    register(store, "worker-2", pid=os.getpid())
    store.machine_stopped("worker-2", "stopped", store.clock.now())
    t0 = store.clock.now() - 1000
    stays = [("waiting", "processing", 0.5), ("processing", "waiting", 19.5)]
    stays += [("waiting", "processing", 80.0), ("processing", "waiting", 4000.0)]
    at = t0
    for n, (source, target, seconds) in enumerate(stays, start=1):
        store.commit_step(Step("worker-1", at, n, source, target, event="go"))
        at += seconds
    store.commit_step(Step("worker-2", t0, 1, "waiting", "processing", event="go"))
    for i in range(3):
        store.add_job("render", {"i": i}, job_id=f"r{i}")
    store.add_job("mail", job_id="m0", max_attempts=2)
    store.add_job("mail", job_id="m1")
    done = store.claim_job("render", "w@h:1", job_id="r0")
    assert done is not None and store.complete_job("r0", "w@h:1")
    for _ in range(2):  # two failed attempts: failed for good
        assert store.claim_job("mail", "w@h:1", job_id="m0") is not None
        store.fail_job("m0", "w@h:1", "boom", retry_delay=0)
    assert store.claim_job("render", "w@h:1", job_id="r1") is not None  # processing
    store.send_event("worker-1", "poke")
    store.send_event("worker-1", "poke")
    store.send_event("worker-3", "poke")


def scrape(url: str, headers: dict[str, str] | None = None, **config: Any) -> tuple[int, str]:
    app = create_app(UiConfig(db_url=url, fallback_interval=0.05, **config))
    with TestClient(app, base_url=BASE) as client:
        response = client.get("/metrics", headers=headers or {})
        return response.status_code, response.text


def samples(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_scrape_matches_the_database(store: Store, url: str) -> None:
    seed(store)
    before = store.clock.now()
    status, text = scrape(url)
    after = store.clock.now()
    assert status == 200
    got = samples(text)

    jobs = rows(store, "SELECT job_type, status, COUNT(*) AS n FROM jobs GROUP BY job_type, status")
    assert len(jobs) == 5  # render: completed, processing, pending; mail: failed, pending
    for r in jobs:
        key = ("statemachine_jobs", (("job_type", r["job_type"]), ("status", r["status"])))
        assert got[key] == r["n"]
    for r in rows(store, "SELECT job_type, SUM(attempts) AS n FROM jobs GROUP BY job_type"):
        assert got[("statemachine_job_attempts_total", (("job_type", r["job_type"]),))] == r["n"]
    assert got[("statemachine_job_attempts_total", (("job_type", "mail"),))] == 2
    assert got[("statemachine_job_failures_total", (("job_type", "mail"),))] == 2
    assert got[("statemachine_job_failures_total", (("job_type", "render"),))] == 0

    pending = "SELECT job_type, MIN(created_at) AS t FROM jobs WHERE status = 'pending'"
    for r in rows(store, pending + " GROUP BY job_type"):
        age = got[("statemachine_oldest_pending_job_age_seconds", (("job_type", r["job_type"]),))]
        assert before - r["t"] - 0.01 <= age <= after - r["t"] + 0.01

    up = {m.machine_name: m.status for m in store.list_machines()}
    assert up == {"worker-1": "running", "worker-2": "stopped"}
    assert got[("statemachine_machine_up", (("machine", "worker-1"),))] == 1
    assert got[("statemachine_machine_up", (("machine", "worker-2"),))] == 0

    for r in rows(store, "SELECT machine_name, COUNT(*) AS n FROM transitions GROUP BY 1"):
        assert got[("statemachine_transitions_total", (("machine", r["machine_name"]),))] == r["n"]
    assert got[("statemachine_transitions_total", (("machine", "worker-1"),))] == 4

    depth = "SELECT target_machine, COUNT(*) AS n FROM machine_events WHERE status = 'pending'"
    counted = {r["target_machine"]: r["n"] for r in rows(store, depth + " GROUP BY 1")}
    assert counted == {"worker-1": 2, "worker-3": 1}
    for name in ("worker-1", "worker-3"):
        assert got[("statemachine_event_queue_depth", (("machine", name),))] == counted[name]
    assert got[("statemachine_event_queue_depth", (("machine", "worker-2"),))] == 0


def test_time_in_state_histogram_from_history(store: Store, url: str) -> None:
    seed(store)
    _, text = scrape(url)
    got = samples(text)
    history = sorted(store.history(machine="worker-1"), key=lambda t: t.step)
    stays: dict[str, list[float]] = {}
    for this, following in itertools.pairwise(history):
        stays.setdefault(this.to_state, []).append(following.created_at - this.created_at)
    assert stays == {"processing": [0.5, 80.0], "waiting": [19.5]}
    for state, seconds in stays.items():
        labels = (("machine", "worker-1"), ("state", state))
        assert got[("statemachine_state_duration_seconds_count", labels)] == len(seconds)
        assert got[("statemachine_state_duration_seconds_sum", labels)] == pytest.approx(
            sum(seconds)
        )
        for bound in STATE_SECONDS_BUCKETS:
            key = ("statemachine_state_duration_seconds_bucket", (("le", repr(bound)), *labels))
            assert got[key] == sum(1 for s in seconds if s <= bound), (state, bound)
    # The last stay has not ended, and a machine with one transition has no completed stay.
    worker2 = (("machine", "worker-2"), ("state", "processing"))
    assert ("statemachine_state_duration_seconds_count", worker2) not in got


def test_empty_database_scrapes(url: str, store: Store) -> None:
    status, text = scrape(url)
    assert status == 200
    names = {f.name for f in text_string_to_metric_families(text)}
    assert {"statemachine_jobs", "statemachine_machine_up", "statemachine_transitions"} <= names


def test_same_access_rules_as_the_api(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'guarded.db'}"
    assert scrape(url, token="s3cret")[0] == 401
    status, text = scrape(url, token="s3cret", headers={"authorization": "Bearer s3cret"})
    assert status == 200 and "statemachine_jobs" in text
    app = create_app(UiConfig(db_url=url, fallback_interval=0.05))
    with TestClient(app, base_url="http://evil.example") as client:
        assert client.get("/metrics").status_code == 403


def test_machine_on_another_host_counts_as_up(store: Store, url: str) -> None:
    store.register_machine(
        "remote",
        "waiting",
        pid=1,
        hostname=socket.gethostname() + "-elsewhere",
        config_path="r.yaml",
        definition_name="R",
        definition_hash="d" * 64,
        definition_text="name: R",
        at=time.time(),
    )
    got = samples(scrape(url)[1])
    assert got[("statemachine_machine_up", (("machine", "remote"),))] == 1
