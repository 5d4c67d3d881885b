"""Which events each built-in action type can return, read from its parameters.

The linter needs this to know which events a state can produce. Custom actions cannot say,
so their outputs are unknown (None): any event may follow them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from statemachine_engine.config.model import ActionSpec

ERROR_EVENT = "error"

#: Per built-in type: parameter naming an event → the event returned when it is not given.
EVENT_PARAMS: Mapping[str, Mapping[str, str | None]] = {
    "bash": {"success": "job_done", "error": ERROR_EVENT, "timeout_event": None},
    "log": {"success": None},
    "activity_log": {"success": None},
    "sleep": {"success": None},
    "check_database_queue": {"success": "new_job", "empty": "no_jobs"},
    "claim_job": {"success": "new_job", "already_claimed": "already_claimed"},
    "complete_job": {"success": None},
    "fail_job": {"success": None},
    "get_pending_jobs": {"success": "jobs_found", "empty": "no_jobs"},
    "wait_for_jobs": {
        "success": "jobs_done",
        "failed": None,
        "timeout_event": None,
        "pending": "timeout",
    },
    "check_events": {"empty": "no_events"},
    "clear_events": {"success": None},
    "send_event": {"success": None},
    "check_machine_state": {
        "not_running": "not_running",
        "in_expected_state": "in_expected_state",
        "unexpected_state": "unexpected_state",
    },
    "start_fsm": {"success": "success"},
    "set_context": {"success": None},
    "add_to_list": {"success": None},
    "pop_from_list": {"success": None, "empty": "list_empty"},
}


def _event_name(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def explicit_outputs(spec: ActionSpec) -> list[tuple[str, str]]:
    """(parameter, event) pairs the action's parameters name explicitly, in a stable order."""
    keys = EVENT_PARAMS.get(spec.type)
    if keys is None:
        return []
    found: list[tuple[str, str]] = []
    for key in keys:
        name = _event_name(spec.params.get(key))
        if name is not None:
            found.append((key, name))
    mappings = spec.params.get("error_mappings")
    if spec.type == "bash" and isinstance(mappings, Mapping):
        for code, event in mappings.items():
            name = _event_name(event)
            if name is not None:
                found.append((f"error_mappings.{code}", name))
    return found


def outputs(spec: ActionSpec) -> frozenset[str] | None:
    """Every event the action may return, `error` (an exception) included; None if unknown."""
    keys = EVENT_PARAMS.get(spec.type)
    if keys is None:
        return None
    found = {ERROR_EVENT}
    for key, default in keys.items():
        name = _event_name(spec.params.get(key, default))
        if name is not None:
            found.add(name)
    found.update(event for _, event in explicit_outputs(spec))
    return frozenset(found)
