"""The JSON Schema of machine files, for editors (YAML language server) and other tools.

`build_schema()` is the source; the package ships it as `config/schema.json`
(`python -m statemachine_engine.tools.schema` rewrites that file, a test keeps them equal).
It checks shape and offers completion; the loader still does the checks a schema cannot
(states referenced by transitions, placeholders, action types from actions directories).
"""

from __future__ import annotations

import json
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from statemachine_engine.actions.builtin import BUILTINS
from statemachine_engine.config.loader import TOP_LEVEL_KEYS
from statemachine_engine.tools.outputs import EVENT_PARAMS

SCHEMA_ID = "https://statemachine-engine.invalid/schema/machine.json"
_NAME = {"type": "string", "minLength": 1}
_EVENT = {"type": "string", "minLength": 1, "description": "name of the event to return"}

_ACTION_PARAMS: dict[str, dict[str, Any]] = {
    "bash": {
        "command": {"type": "string", "description": "bash command; placeholders are escaped"},
        "timeout": {"type": ["number", "null"], "description": "seconds (default 30)"},
        "stdin": {"description": "value fed to the command's standard input"},
        "env": {"type": "object", "additionalProperties": {"type": "string"}},
        "cwd": {"type": "string"},
        "pass_env": {"type": "array", "items": {"type": "string"}},
        "error_mappings": {
            "type": "object",
            "description": "exit code -> event",
            "additionalProperties": {"type": "string"},
        },
    },
    "log": {"message": {"type": "string"}, "level": {"type": "string"}},
    "activity_log": {"message": {"type": "string"}, "level": {"type": "string"}},
    "sleep": {"seconds": {"type": ["number", "string"]}, "duration": {"type": "number"}},
    "check_database_queue": {"job_type": {"type": "string"}, "machine_type": {"type": "string"}},
    "claim_job": {"job_id": {"type": ["string", "integer"]}},
    "complete_job": {"result": {}},
    "fail_job": {"message": {"type": "string"}, "retry": {"type": "boolean"}},
    "get_pending_jobs": {
        "job_type": {"type": "string"},
        "machine_type": {"type": "string"},
        "limit": {"type": ["integer", "string"]},
        "store_as": {"type": "string"},
    },
    "wait_for_jobs": {
        "job_ids": {},
        "job_ids_key": {"type": "string"},
        "poll_interval": {"type": ["number", "string"]},
        "timeout": {"type": ["number", "string", "null"]},
        "store_as": {"type": "string"},
    },
    "send_event": {
        "target_machine": {"type": "string"},
        "target": {"type": "string"},
        "event_type": {"type": "string"},
        "event": {"type": "string"},
        "payload": {},
        "job_id": {"type": ["string", "integer"]},
    },
    "check_machine_state": {
        "target_machine": {"type": "string"},
        "expected_states": {"type": "array", "items": {"type": "string"}},
    },
    "start_fsm": {
        "yaml_path": {"type": "string"},
        "config": {"type": "string"},
        "machine_name": {"type": "string"},
        "initial_context": {"type": ["object", "string"]},
        "context_vars": {"type": "array", "items": {"type": "string"}},
        "additional_args": {"type": "array", "items": {"type": "string"}},
    },
    "set_context": {
        "key": {"type": "string"},
        "value": {},
        "values": {"type": "object"},
        "context": {"type": "object"},
    },
    "add_to_list": {"list_key": {"type": "string"}, "value": {}, "unique": {"type": "boolean"}},
    "pop_from_list": {
        "list_key": {"type": "string"},
        "position": {"enum": ["first", "last"]},
        "store_as": {"type": "string"},
    },
}


def _action_schema() -> dict[str, Any]:
    """An action: `type` (a built-in offered for completion, or any custom name) and its
    parameters, flat or under `params:`; known parameters of built-ins are described."""
    branches = []
    for name in sorted(BUILTINS):
        properties: dict[str, Any] = {key: dict(_EVENT) for key in EVENT_PARAMS.get(name, {})}
        properties.update(_ACTION_PARAMS.get(name, {}))
        branches.append(
            {
                "if": {"properties": {"type": {"const": name}}, "required": ["type"]},
                "then": {
                    "properties": {
                        **properties,
                        "params": {"type": "object", "properties": properties},
                    }
                },
            }
        )
    return {
        "type": "object",
        "required": ["type"],
        "properties": {
            "type": {
                "description": "a built-in action, or a custom one (<type>_action.py)",
                "anyOf": [
                    {"enum": sorted(BUILTINS)},
                    {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,99}$"},
                ],
            },
            "description": {"type": "string"},
            "params": {"type": "object", "description": "parameters (or write them flat)"},
        },
        "additionalProperties": True,
        "allOf": branches,
    }


def build_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a machine file, either dialect."""
    state_list = {"type": "array", "items": _NAME}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "statemachine-engine machine definition",
        "type": "object",
        "required": ["initial_state"],
        "additionalProperties": False,
        "$defs": {"action": _action_schema()},
        "properties": {
            "name": {"type": "string", "description": "display name"},
            "description": {"type": "string"},
            "version": {"type": ["string", "number"]},
            "initial_state": {**_NAME, "description": "the state the machine starts in"},
            "states": {**state_list, "description": "every state, in display order"},
            "events": {
                "description": "a list of event names, or a map event -> {context_map}",
                "oneOf": [
                    {"type": "array", "items": _NAME},
                    {
                        "type": "object",
                        "additionalProperties": {
                            "type": ["object", "null"],
                            "properties": {
                                "context_map": {
                                    "type": "object",
                                    "description": "context key -> payload path",
                                    "additionalProperties": {"type": "string"},
                                }
                            },
                            "additionalProperties": False,
                        },
                    },
                ],
            },
            "transitions": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["from", "to", "event"],
                    "additionalProperties": False,
                    "properties": {
                        "from": {
                            "description": "a state, a list of states, or '*' for any state",
                            "oneOf": [_NAME, {"type": "array", "items": _NAME, "minItems": 1}],
                        },
                        "to": _NAME,
                        "event": {
                            **_NAME,
                            "description": "an event name, or timeout(N) for N seconds in"
                            " the source state",
                        },
                        "actions": {"type": "array", "items": {"$ref": "#/$defs/action"}},
                        "description": {"type": "string"},
                    },
                },
            },
            "actions": {
                "type": "object",
                "description": "state -> actions run on entering it",
                "additionalProperties": {"type": "array", "items": {"$ref": "#/$defs/action"}},
            },
            "metadata": {
                "type": "object",
                "properties": {
                    "machine_name": {"type": "string"},
                    "job_type": {"type": "string"},
                    "description": {"type": "string"},
                },
            },
            "template": {"type": "boolean", "description": "run as many instances, one per job"},
            "groups": {
                "type": "object",
                "description": "group name -> its states (diagrams, the Kanban board)",
                "additionalProperties": state_list,
            },
            "context": {"type": "object", "description": "defaults for context keys"},
            "options": {
                "type": "object",
                "properties": {
                    "idle_events": {"type": "array", "items": _NAME},
                    "jobs": {"type": "object"},
                },
            },
            "machine_name": {"type": "string"},
            "job_type": {"type": "string"},
            "config": {"type": "object"},
        },
    }


def schema_text() -> str:
    """The schema as the shipped file holds it."""
    return json.dumps(build_schema(), indent=2, sort_keys=True) + "\n"


def shipped_schema_path() -> Path:
    return Path(str(resources.files("statemachine_engine.config").joinpath("schema.json")))


def _check_keys() -> None:
    missing = set(TOP_LEVEL_KEYS) - set(build_schema()["properties"])
    if missing:
        raise AssertionError(f"schema lacks top-level keys {sorted(missing)}")


if __name__ == "__main__":
    _check_keys()
    shipped_schema_path().write_text(schema_text(), encoding="utf-8")
    sys.exit(0)
