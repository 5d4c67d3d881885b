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
from statemachine_engine.actions.params import COMMON_KEYS, Declaration
from statemachine_engine.config.loader import TOP_LEVEL_KEYS
from statemachine_engine.core.loader import ActionLoader

SCHEMA_ID = "https://statemachine-engine.invalid/schema/machine.json"
_NAME = {"type": "string", "minLength": 1}
_EVENT = {"type": "string", "minLength": 1, "description": "name of the event to return"}

_PLACEHOLDER = {"type": "string", "pattern": "\\{", "description": "a placeholder"}
_KINDS: dict[str, dict[str, Any]] = {
    "text": {"type": ["string", "number"]},
    "name": _NAME,
    "event": _EVENT,
    "number": {"type": ["number", "string"]},
    "int": {"type": ["integer", "string"]},
    "bool": {"anyOf": [{"type": "boolean"}, _PLACEHOLDER]},
    "list": {"anyOf": [{"type": "array"}, _PLACEHOLDER]},
    "names": {"anyOf": [_NAME, {"type": "array", "items": _NAME}]},
    "map": {"anyOf": [{"type": "object"}, _PLACEHOLDER]},
    "any": {},
}


def _declared(name: str) -> Declaration:
    return ActionLoader(entry_points=()).resolve(name).declared()


def _properties(declaration: Declaration) -> dict[str, Any]:
    """Each parameter and event key of a built-in, described."""
    properties: dict[str, Any] = {
        key: {"description": "(accepted, no effect)"} for key in COMMON_KEYS
    }
    for param in declaration.params or ():
        properties[param.name] = {**_KINDS[param.kind], "description": param.doc}
    for emits in declaration.all_emits:
        default = f" (default {emits.default})" if emits.default else ""
        kind = "failure" if emits.failure else "event"
        properties[emits.key] = {**_EVENT, "description": f"{kind}: {emits.doc}{default}"}
    properties["description"] = {"type": "string"}
    return properties


def _required(names: tuple[str, ...]) -> dict[str, Any]:
    """One of `names` given flat or under `params:`."""
    flat = [{"required": [name], "properties": {name: {}}} for name in names]
    nested = [
        {
            "required": ["params"],
            "properties": {
                "params": {"type": "object", "required": [name], "properties": {name: {}}}
            },
        }
        for name in names
    ]
    return {"anyOf": flat + nested}


def _action_schema() -> dict[str, Any]:
    """An action: `type` (a built-in offered for completion, or any custom name) and its
    parameters, flat or under `params:`. A built-in's parameters come from its declaration:
    the required ones must be there and no other key is accepted."""
    branches = []
    for name in sorted(BUILTINS):
        declaration = _declared(name)
        properties = _properties(declaration)
        params = {"type": "object", "properties": properties, "additionalProperties": False}
        groups: list[tuple[str, ...]] = [(p.name,) for p in declaration.params or () if p.required]
        groups += list(declaration.one_of)
        then: dict[str, Any] = {
            "properties": {**properties, "type": {}, "params": params},
            "additionalProperties": False,
        }
        if groups:
            then["allOf"] = [_required(group) for group in groups]
        branches.append(
            {
                "if": {"properties": {"type": {"const": name}}, "required": ["type"]},
                "then": then,
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
                "additionalProperties": False,
                "properties": {
                    "idle_events": {"type": "array", "items": _NAME},
                    "jobs": {"type": "object"},
                    "failure_events": {
                        "type": "array",
                        "items": _NAME,
                        "description": "events that are failures whatever returns them",
                    },
                    "on_error": {
                        "description": "where a failure without a transition goes: a state,"
                        ' or a map state -> state ("*" for the others)',
                        "anyOf": [_NAME, {"type": "object", "additionalProperties": _NAME}],
                    },
                    "max_instant_steps": {
                        "type": "integer",
                        "minimum": 1,
                        "description": "steps without waiting before loop_detected (default 1000)",
                    },
                    "restart": {
                        "enum": ["initial", "resume"],
                        "description": "where a restarted machine starts: its initial state"
                        " (default) or, with resume, its last committed state, context and"
                        " timers",
                    },
                    "max_dwell": {
                        "type": "object",
                        "description": "state -> seconds it may last before stuck_event and an"
                        " alert, also while an action runs",
                        "additionalProperties": {"type": "number", "exclusiveMinimum": 0},
                    },
                    "stuck_event": {
                        **_NAME,
                        "description": "event max_dwell fires (default stuck)",
                    },
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
