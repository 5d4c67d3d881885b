"""`statemachine-events` words a dwell alert like the UI's event log does."""

from __future__ import annotations

from statemachine_engine.cli.events import render


def row(payload: dict[str, object]) -> dict[str, object]:
    return {"machine_name": "w", "kind": "stuck", "payload": payload, "created_at": 0.0}


def test_stuck_rows_name_state_seconds_and_what_happens() -> None:
    fired = row({"state": "processing", "seconds": 60.0, "event": "stuck"})
    assert render(fired, "human").endswith(
        "w: stuck in processing for 60.0 s (max_dwell): firing stuck"
    )
    alert = row({"state": "waiting", "seconds": 5, "event": None})
    assert render(alert, "human").endswith("w: stuck in waiting for 5 s (max_dwell): alert only")
    assert render(alert, "compact") == "w stuck"
