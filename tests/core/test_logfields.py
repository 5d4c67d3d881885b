"""JSON log lines carry the running machine's fields (issue 16 item 7)."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace
from typing import Any

from statemachine_engine.cli.common import JsonLineFormatter
from statemachine_engine.core import logfields


def record(**extra: Any) -> logging.LogRecord:
    rec = logging.LogRecord("statemachine_engine.core.engine", logging.INFO, "", 0, "x", (), None)
    rec.__dict__.update(extra)
    return rec


def fake_engine(job: Any) -> Any:
    return SimpleNamespace(
        machine_name="m1",
        state="busy",
        step=4,
        last_event="go",
        runtime=SimpleNamespace(job=job),
    )


def test_fields_of_the_bound_engine_and_extra_wins() -> None:
    job = SimpleNamespace(job_id="J1", attempts=2)
    token = logfields.bind(fake_engine(job))
    try:
        line = json.loads(JsonLineFormatter().format(record(exit_code=3, attempt=9)))
    finally:
        logfields.unbind(token)
    assert {k: line[k] for k in ("machine", "state", "event", "job_id", "step")} == {
        "machine": "m1",
        "state": "busy",
        "event": "go",
        "job_id": "J1",
        "step": 4,
    }
    assert (line["attempt"], line["exit_code"]) == (9, 3)


def test_no_job_held_and_no_engine() -> None:
    token = logfields.bind(fake_engine(None))
    try:
        line = json.loads(JsonLineFormatter().format(record()))
    finally:
        logfields.unbind(token)
    assert (line["job_id"], line["attempt"]) == (None, None)
    plain = json.loads(JsonLineFormatter().format(record()))
    assert "machine" not in plain and "step" not in plain
