"""The resume snapshot (migration 006) on both backends: written by registration and with
every step that enters a state, in the step's transaction, read back unchanged; a step that
enters no state leaves it; a rolled-back group leaves it; `restart: initial` writes NULL."""

from __future__ import annotations

from typing import Any

import pytest

from statemachine_engine.core.resume import Snapshot
from statemachine_engine.database.records import OutgoingEvent, Step
from statemachine_engine.database.store import Store
from statemachine_engine.errors import StoreError

CONTEXT: dict[str, Any] = {"text": 'é \u2028 "quoted"', "n": [1, 2.5, None, True], "m": {}}


def _register(store: Store, snapshot: str | None, entered_at: float | None = None) -> None:
    store.register_machine(
        "worker",
        "idle",
        pid=1,
        hostname="host",
        config_path="/w.yaml",
        definition_name="w",
        definition_hash="h",
        definition_text="",
        at=10.0,
        entered_at=entered_at,
        snapshot=snapshot,
    )


def test_registration_writes_the_snapshot_and_the_entry_time(store: Store) -> None:
    assert store.machine_snapshot("worker") is None
    snapshot = Snapshot("idle", 0, 4.0, CONTEXT)
    _register(store, snapshot.encode(), entered_at=4.0)
    text = store.machine_snapshot("worker")
    assert text is not None and Snapshot.decode(text) == snapshot
    status = store.get_machine("worker")
    assert status is not None and status.state_entered_at == 4.0
    _register(store, None)
    assert store.machine_snapshot("worker") is None, "a restart: initial run writes NULL"
    status = store.get_machine("worker")
    assert status is not None and status.state_entered_at == 10.0


def test_steps_write_the_snapshot_of_the_last_state_they_enter(store: Store) -> None:
    _register(store, Snapshot("idle", 0, 10.0).encode())
    busy = Snapshot("busy", 1, 11.0, CONTEXT, "J1", "idle", event_id=5)
    done = Snapshot("done", 2, 12.0, {**CONTEXT, "result": 3})
    steps = [
        Step("worker", 11.0, 1, "idle", "busy", "go", snapshot=busy.encode()),
        Step("worker", 12.0, 2, "busy", "done", "ok", snapshot=done.encode()),
        Step("worker", 12.5, 2, "done", None, None),  # enters no state
    ]
    store.commit_steps(steps)
    text = store.machine_snapshot("worker")
    assert text is not None and Snapshot.decode(text) == done
    status = store.get_machine("worker")
    assert status is not None and (status.current_state, status.step) == ("done", 2)


def test_a_group_that_rolls_back_keeps_the_earlier_snapshot(store: Store) -> None:
    first = Snapshot("idle", 0, 10.0)
    _register(store, first.encode())
    later = Snapshot("busy", 1, 11.0)
    unstorable = OutgoingEvent("other", "ping", {"x": object()})
    step = Step(
        "worker", 11.0, 1, "idle", "busy", "go", outbox=[unstorable], snapshot=later.encode()
    )
    with pytest.raises(StoreError):
        store.commit_steps([step])
    assert store.machine_snapshot("worker") == first.encode()
