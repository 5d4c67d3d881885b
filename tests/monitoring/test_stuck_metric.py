"""`statemachine_stuck_total` (issue 17 item 3): dwell alerts counted from the database at
scrape time, parsed with prometheus_client's parser, on real SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from statemachine_engine.core.deadlines import STUCK_KIND
from statemachine_engine.database import Store
from statemachine_engine.database.postgres import PostgresStore
from statemachine_engine.database.sqlite import SQLiteStore
from statemachine_engine.monitoring import UiConfig, create_app

from .conftest import BASE


def rows(store: Store, sql: str) -> list[dict[str, Any]]:
    """Plain SQL straight at the database, independent of the statement under test."""
    if isinstance(store, SQLiteStore):
        return store.conn.rows(sql)
    assert isinstance(store, PostgresStore)
    return [dict(r) for r in store.conn.read(lambda tx: tx.rows(sql))]


def alert(store: Store, machine: str, state: str) -> None:
    payload = {"machine_name": machine, "state": state, "seconds": 60.0, "event": None}
    store.add_realtime(machine, STUCK_KIND, {**payload, "since": store.clock.now()})


def stuck_samples(url: str) -> dict[tuple[str, str], float]:
    app = create_app(UiConfig(db_url=url, fallback_interval=0.05))
    with TestClient(app, base_url=BASE) as client:
        response = client.get("/metrics")
    assert response.status_code == 200
    found: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(response.text):
        if family.name != "statemachine_stuck":
            continue
        assert family.type == "counter"
        for s in family.samples:
            if s.name == "statemachine_stuck_total":
                found[(s.labels["machine"], s.labels["state"])] = s.value
    return found


def test_stuck_total_counts_dwell_alerts_per_machine_and_state(store: Store, url: str) -> None:
    assert stuck_samples(url) == {}
    for machine, state in [("w1", "processing")] * 3 + [("w1", "waiting"), ("w2", "processing")]:
        alert(store, machine, state)
    store.add_realtime("w1", "error", {"state": "processing", "error": "x"})  # another kind
    got = stuck_samples(url)
    sql = "SELECT machine_name, payload FROM realtime_events WHERE kind = 'stuck'"
    counted: dict[tuple[str, str], float] = {}
    for r in rows(store, sql):
        key = (r["machine_name"], json.loads(r["payload"])["state"])
        counted[key] = counted.get(key, 0) + 1
    assert (
        got == counted == {("w1", "processing"): 3, ("w1", "waiting"): 1, ("w2", "processing"): 1}
    )
