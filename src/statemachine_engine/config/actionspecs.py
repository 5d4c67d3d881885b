"""Parses action lists (`- type: bash ...`) into ActionSpecs, accepting flat and `params:` forms."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from statemachine_engine.actions.params import Declaration, kind_problem
from statemachine_engine.config.model import ActionCatalog, ActionSpec, Position
from statemachine_engine.config.problems import Problems, did_you_mean
from statemachine_engine.config.yamlsource import YamlList, YamlMap, plain

ACTION_TYPE_RE = re.compile(r"[a-z][a-z0-9_]{0,99}")
_RESERVED = ("type", "params", "description")


@dataclass(frozen=True)
class ParsedAction:
    """An ActionSpec plus its parameters as read, strings still carrying their positions."""

    spec: ActionSpec
    raw_params: dict[str, Any]


def parse_actions(
    value: Any, where: Position, catalog: ActionCatalog, problems: Problems
) -> list[ParsedAction]:
    """Parse an action list; `value` None means no actions. Errors go to `problems`."""
    if value is None:
        return []
    if not isinstance(value, YamlList):
        problems.add(
            where,
            "actions must be a list",
            "write each action as a list item, e.g. `- type: log`",
        )
        return []
    parsed = [
        parse_action(item, value.where(index), catalog, problems)
        for index, item in enumerate(value)
    ]
    return [action for action in parsed if action is not None]


def _check_type(item: YamlMap, catalog: ActionCatalog, problems: Problems) -> str | None:
    if "type" not in item:
        problems.add(item.pos, "action has no `type:`", "add e.g. `type: bash`")
        return None
    action_type = item["type"]
    where = item.where("type")
    if not isinstance(action_type, str):
        problems.add(where, f"action type must be a name, found {action_type!r}")
        return None
    if not ACTION_TYPE_RE.fullmatch(action_type):
        problems.add(
            where,
            f"invalid action type {action_type[:100]!r}",
            "action types are lower-case identifiers of at most 100 characters,"
            " like `bash` or `process_file`",
        )
        return None
    names = catalog.names()
    if action_type not in names:
        hint = did_you_mean(action_type, names) or (
            "custom actions are found in the actions directory or through the"
            " `statemachine_engine.actions` entry point group"
        )
        problems.add(where, f"unknown action type '{action_type}'", hint)
        return None
    return str(action_type)


def _merge_params(item: YamlMap, problems: Problems) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for key, value in item.items():
        if key not in _RESERVED:
            merged[key] = value
    nested = item.get("params")
    if nested is None:
        return merged
    if not isinstance(nested, YamlMap):
        problems.add(item.where("params"), "`params:` must be a mapping of parameter names")
        return merged
    for key, value in nested.items():
        if key in merged or (key == "description" and "description" in item):
            problems.add(
                nested.where_key(key),
                f"parameter '{key}' is given both beside `type:` and under `params:`",
                "keep only one of them",
            )
        elif key == "type":
            problems.add(nested.where_key(key), "`type` cannot be a parameter")
        else:
            merged[key] = value
    return merged


def parse_action(
    item: Any, where: Position, catalog: ActionCatalog, problems: Problems
) -> ParsedAction | None:
    """Parse one action mapping; returns None (after recording errors) when it is invalid."""
    if isinstance(item, str):
        problems.add(where, f"action must be a mapping, found '{item}'", f"write `- type: {item}`")
        return None
    if not isinstance(item, YamlMap):
        problems.add(where, "action must be a mapping with a `type:`", "write `- type: bash`")
        return None
    action_type = _check_type(item, catalog, problems)
    params = _merge_params(item, problems)
    ok = action_type is not None
    for key in params:
        if not isinstance(key, str):
            problems.add(_key_pos(item, key), f"parameter names must be strings, found {key!r}")
            ok = False
    description = item["description"] if "description" in item else params.pop("description", None)
    if description is not None and not isinstance(description, str):
        problems.add(_key_pos(item, "description"), "`description:` must be a string")
        ok = False
    if not ok or action_type is None:
        return None
    declaration = catalog.declaration(action_type)  # a module that fails to load raises
    if not _check_params(item, action_type, params, declaration, problems):
        return None
    spec = ActionSpec(
        type=action_type,
        params=plain(params),
        pos=item.pos,
        description=None if description is None else str(description),
    )
    return ParsedAction(spec=spec, raw_params=params)


def _check_params(
    item: YamlMap,
    action_type: str,
    params: dict[str, Any],
    declaration: Declaration,
    problems: Problems,
) -> bool:
    """Check `params` against what the action declares: unknown keys (with did-you-mean),
    missing required ones, values of the wrong kind. False when anything was wrong."""
    keys = declaration.keys
    if keys is None:
        return True
    before = len(problems.errors)
    for key in params:
        if key not in keys:
            hint = did_you_mean(str(key), keys) or f"{action_type} takes: {', '.join(keys)}"
            problems.add(
                _key_pos(item, key),
                f"unknown parameter {str(key)!r} for {action_type}",
                hint,
                code="SM112",
            )
    for param in declaration.params or ():
        if param.required and param.name not in params:
            problems.add(
                item.pos,
                f"{action_type} requires parameter {param.name!r}",
                f"add `{param.name}: ...` ({param.doc})" if param.doc else None,
                code="SM111",
            )
        elif param.name in params and (expected := kind_problem(param.kind, params[param.name])):
            problems.add(
                _value_pos(item, param.name),
                f"parameter {param.name!r} of {action_type} must be {expected},"
                f" found {_shown(params[param.name])}",
                code="SM113",
            )
    for group in declaration.one_of:
        if not any(name in params for name in group):
            names = " or ".join(f"`{name}`" for name in group)
            problems.add(item.pos, f"{action_type} requires {names}", code="SM111")
    for emits in declaration.all_emits:
        value = params.get(emits.key)
        if value is not None and kind_problem("event", value):
            problems.add(
                _value_pos(item, emits.key),
                f"`{emits.key}:` of {action_type} must be an event name, found {_shown(value)}",
                code="SM113",
            )
    return len(problems.errors) == before


def _shown(value: Any) -> str:
    text = repr(plain(value))
    return text if len(text) <= 60 else text[:57] + "..."


def _value_pos(item: YamlMap, key: str) -> Position:
    """Where the value of parameter `key` is written (flat or under `params:`)."""
    return _key_pos(item, key, value=True)


def _key_pos(item: YamlMap, key: Any, *, value: bool = False) -> Position:
    """Where parameter `key` (or, with `value`, its value) is written."""
    for mapping in (item, item.get("params")):
        if isinstance(mapping, YamlMap) and key in mapping.key_pos:
            return mapping.where(key) if value else mapping.where_key(key)
    return item.pos
