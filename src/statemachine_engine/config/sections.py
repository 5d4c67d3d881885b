"""Parsers for the simple top-level sections: states, events, groups, context, options, metadata."""

from __future__ import annotations

import math
from typing import Any

from statemachine_engine.config.dwell import DWELL_OPTION_KEYS
from statemachine_engine.config.model import (
    RESTART_MODES,
    TIMEOUT_RE,
    WILDCARD,
    EventSpec,
    JobOptions,
    Position,
)
from statemachine_engine.config.problems import Problems, did_you_mean
from statemachine_engine.config.yamlsource import YamlList, YamlMap, YamlStr, comment_groups, plain
from statemachine_engine.names import name_problem, shown

EVENT_KEYS = ("context_map", "description")
OPTION_KEYS: tuple[str, ...] = (
    "idle_events",
    "jobs",
    "failure_events",
    "on_error",
    "max_instant_steps",
    "restart",
    *DWELL_OPTION_KEYS,
)
JOB_OPTION_KEYS = ("lease", "heartbeat", "max_attempts", "backoff", "jitter")
METADATA_EXTRAS = ("description", "version", "machine_name", "job_type", "config")


def name_error(value: object, what: str) -> str | None:
    """`invalid <what> <name>: <why>` when `value` breaks the name rule, else None."""
    problem = name_problem(value)
    return None if problem is None else f"invalid {what} {shown(value)}: {problem}"


def check_name_at(value: object, pos: Position, what: str, problems: Problems) -> bool:
    """Record an error at `pos` when `value` breaks the name rule; True when it is valid."""
    if what == "event name" and isinstance(value, str) and TIMEOUT_RE.fullmatch(value):
        return True  # `timeout(N)` declared among the events, as the released package allows
    message = name_error(value, what)
    if message is not None:
        problems.add(pos, message)
    return message is None


def _names(value: YamlList, what: str, problems: Problems) -> list[YamlStr]:
    """The list's items that are non-empty strings; other items are recorded as errors."""
    names: list[YamlStr] = []
    for index, item in enumerate(value):
        if isinstance(item, YamlStr) and item:
            names.append(item)
        else:
            problems.add(
                value.where(index),
                f"{what} must be a non-empty string, found {item!r}",
                "quote names that look like numbers, true/false or null",
            )
    return names


def _list(root: YamlMap, key: str, problems: Problems, hint: str) -> YamlList | None:
    value = root.get(key)
    if value is None:
        return None
    if not isinstance(value, YamlList):
        problems.add(root.where(key), f"`{key}:` must be a list", hint)
        return None
    return value


def parse_states(root: YamlMap, problems: Problems) -> list[str] | None:
    """Declared state names in order; None when `states:` is absent or unusable."""
    value = _list(root, "states", problems, "write `states: [waiting, working]`")
    if value is None:
        return None
    states: dict[str, Position] = {}
    for name in _names(value, "a state name", problems):
        if name == WILDCARD:
            problems.add(name.pos, "'*' cannot be a state name", "'*' means any state in `from:`")
        elif not check_name_at(name, name.pos, "state name", problems):
            continue
        elif name in states:
            first = states[name]
            problems.add(name.pos, f"state '{name}' is declared twice (first on line {first.line})")
        else:
            states[str(name)] = name.pos
    return list(states)


def parse_events(root: YamlMap, problems: Problems) -> dict[str, EventSpec] | None:
    """Declared events (a list of names or a map name -> options); None when not declared."""
    value = root.get("events")
    if value is None:
        return None
    events: dict[str, EventSpec] = {}
    if isinstance(value, YamlList):
        for name in _names(value, "an event name", problems):
            if not check_name_at(name, name.pos, "event name", problems):
                continue
            if name in events:
                problems.add(name.pos, f"event '{name}' is declared twice")
            events[str(name)] = EventSpec(str(name), name.pos)
        return events
    if not isinstance(value, YamlMap):
        problems.add(
            root.where("events"),
            "`events:` must be a list of names or a mapping",
            "write `events: [new_job, done]`",
        )
        return None
    for name, options in value.items():
        pos = value.where_key(name)
        if not isinstance(name, str) or not name:
            problems.add(pos, f"event names must be non-empty strings, found {shown(name)}")
            continue
        if not check_name_at(name, pos, "event name", problems):
            continue
        events[name] = EventSpec(name, pos, _context_map(options, value.where(name), problems))
    return events


def _context_map(options: Any, where: Position, problems: Problems) -> dict[str, str]:
    if options is None:
        return {}
    if not isinstance(options, YamlMap):
        problems.add(where, "event options must be a mapping", "write `{context_map: {key: path}}`")
        return {}
    for key in options:
        if key not in EVENT_KEYS:
            problems.add(
                options.where_key(key),
                f"unknown event option {str(key)!r}",
                did_you_mean(str(key), EVENT_KEYS),
            )
    mapping = options.get("context_map")
    if mapping is None:
        return {}
    if not isinstance(mapping, YamlMap):
        problems.add(options.where("context_map"), "`context_map:` must be a mapping")
        return {}
    result: dict[str, str] = {}
    for key, path in mapping.items():
        if not isinstance(key, str) or not isinstance(path, str) or not key or not path:
            problems.add(
                mapping.where_key(key),
                "`context_map:` entries must be `context_key: payload.path` strings",
            )
            continue
        result[key] = str(path)
    return result


def parse_groups(
    root: YamlMap, text: str, states: list[str], problems: Problems
) -> dict[str, tuple[str, ...]]:
    """`groups: {Name: [state, ...]}`, or else the `# === NAME ===` comments in `states:`."""
    value = root.get("groups")
    if value is None:
        listed = root.get("states")
        if "groups" in root or not isinstance(listed, YamlList):
            return {}
        named = [item for item in listed if isinstance(item, YamlStr)]
        return comment_groups(text, named, after_line=root.where_key("states").line)
    if not isinstance(value, YamlMap):
        problems.add(root.where("groups"), "`groups:` must map group names to lists of states")
        return {}
    groups: dict[str, tuple[str, ...]] = {}
    owner: dict[str, str] = {}
    declared = set(states)
    for group, members in value.items():
        if not isinstance(group, str) or not group:
            problems.add(value.where_key(group), "group names must be non-empty strings")
            continue
        if not isinstance(members, YamlList):
            problems.add(value.where(group), f"group '{group}' must be a list of states")
            continue
        names: list[str] = []
        for name in _names(members, "a state name", problems):
            if name not in declared:
                hint = did_you_mean(name, states)
                problems.add(name.pos, f"group '{group}' lists undeclared state '{name}'", hint)
            elif name in owner:
                problems.add(name.pos, f"state '{name}' is already in group '{owner[name]}'")
            else:
                owner[str(name)] = group
                names.append(str(name))
        groups[group] = tuple(names)
    return groups


def parse_context(root: YamlMap, problems: Problems) -> dict[str, Any]:
    """`context:` default values of context keys."""
    value = root.get("context")
    if value is None:
        return {}
    if not isinstance(value, YamlMap):
        problems.add(root.where("context"), "`context:` must be a mapping of default values")
        return {}
    for key in value:
        if not isinstance(key, str) or not key:
            problems.add(value.where_key(key), f"context keys must be strings, found {key!r}")
    result: dict[str, Any] = plain(value)
    return result


def parse_idle_events(root: YamlMap, problems: Problems) -> set[str]:
    """`options: {idle_events: [...]}`: extra events that mean "nothing to do, park"."""
    options = root.get("options")
    if options is None:
        return set()
    if not isinstance(options, YamlMap):
        problems.add(root.where("options"), "`options:` must be a mapping")
        return set()
    for key in options:
        if key not in OPTION_KEYS:
            problems.add(
                options.where_key(key),
                f"unknown option {str(key)!r}",
                did_you_mean(str(key), OPTION_KEYS),
            )
    idle = _list(options, "idle_events", problems, "write `idle_events: [no_work]`")
    if idle is None:
        return set()
    return {str(name) for name in _names(idle, "an event name", problems)}


def parse_failure_events(root: YamlMap, problems: Problems) -> frozenset[str]:
    """`options: {failure_events: [...]}`: events that are failures whatever returns them."""
    options = root.get("options")
    if not isinstance(options, YamlMap):
        return frozenset()
    found = _list(options, "failure_events", problems, "write `failure_events: [rejected]`")
    if found is None:
        return frozenset()
    return frozenset(str(name) for name in _names(found, "an event name", problems))


def parse_on_error(root: YamlMap, states: list[str], problems: Problems) -> dict[str, str]:
    """`options: {on_error: STATE}` or `{on_error: {"*": STATE, state: STATE}}`: where a
    failure without a transition sends the machine (per state, "*" for the others)."""
    options = root.get("options")
    value = options.get("on_error") if isinstance(options, YamlMap) else None
    if value is None:
        return {}
    assert isinstance(options, YamlMap)
    hint = 'write `on_error: failed` or `on_error: {"*": failed, processing: cleanup}`'
    entries: list[tuple[Any, Any, Position]]
    if isinstance(value, YamlStr):
        entries = [(WILDCARD, value, value.pos)]
    elif isinstance(value, YamlMap):
        entries = [(key, target, value.where(key)) for key, target in value.items()]
        for key in value:
            if key != WILDCARD and key not in states:
                where = value.where_key(key)
                problems.add(where, f"on_error for undeclared state {str(key)!r}", hint)
    else:
        problems.add(options.where("on_error"), "`on_error:` must be a state or a mapping", hint)
        return {}
    result: dict[str, str] = {}
    declared = set(states)
    for key, target, where in entries:
        if not isinstance(target, str) or target not in declared:
            found = did_you_mean(str(target), states) if isinstance(target, str) else None
            problems.add(where, f"on_error target {target!r} is not a declared state", found)
        elif isinstance(key, str):
            result[key] = str(target)
    return result


def parse_max_instant_steps(root: YamlMap, problems: Problems) -> int | None:
    """`options: {max_instant_steps: N}`: consecutive steps without waiting before a loop
    is declared (`loop_detected`)."""
    options = root.get("options")
    value = options.get("max_instant_steps") if isinstance(options, YamlMap) else None
    if value is None:
        return None
    assert isinstance(options, YamlMap)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        problems.add(
            options.where("max_instant_steps"),
            f"`max_instant_steps:` must be an integer >= 1, found {value!r}",
        )
        return None
    return value


def parse_restart(root: YamlMap, problems: Problems) -> str:
    """`options: {restart: initial|resume}`: where the machine starts when its process starts
    again (default `initial`, the released behaviour)."""
    options = root.get("options")
    value = options.get("restart") if isinstance(options, YamlMap) else None
    if value is None:
        return "initial"
    assert isinstance(options, YamlMap)
    if value not in RESTART_MODES:
        problems.add(
            options.where("restart"),
            f"`restart:` must be one of {', '.join(RESTART_MODES)}, found {plain(value)!r}",
            did_you_mean(str(value), RESTART_MODES),
        )
        return "initial"
    return str(value)


def parse_job_options(root: YamlMap, problems: Problems) -> dict[str, JobOptions]:
    """`options: {jobs: {<job_type>: {lease, heartbeat, max_attempts, backoff, jitter}}}`."""
    options = root.get("options")
    jobs = options.get("jobs") if isinstance(options, YamlMap) else None
    if jobs is None:
        return {}
    assert isinstance(options, YamlMap)
    example = "write `jobs: {render: {lease: 60, max_attempts: 5, backoff: 2, jitter: 0.2}}`"
    if not isinstance(jobs, YamlMap):
        problems.add(options.where("jobs"), "`jobs:` must map job types to settings", example)
        return {}
    result: dict[str, JobOptions] = {}
    for job_type, settings in jobs.items():
        if not isinstance(job_type, str) or not job_type:
            problems.add(jobs.where_key(job_type), f"job types must be strings, found {job_type!r}")
            continue
        if not isinstance(settings, YamlMap):
            where = jobs.where(job_type)
            problems.add(where, f"settings of job type '{job_type}' must be a mapping")
            continue
        values: dict[str, Any] = {}
        for key, value in settings.items():
            where = settings.where(key)
            if key not in JOB_OPTION_KEYS:
                hint = did_you_mean(str(key), JOB_OPTION_KEYS)
                problems.add(settings.where_key(key), f"unknown job option {str(key)!r}", hint)
            elif isinstance(value, bool) or not isinstance(value, int | float):
                problems.add(where, f"`{key}:` must be a number, found {value!r}")
            elif key == "max_attempts" and (not isinstance(value, int) or value < 1):
                problems.add(where, f"`max_attempts:` must be an integer >= 1, found {value!r}")
            elif key == "jitter" and not 0 <= value < 1:
                problems.add(where, f"`jitter:` must be a fraction in [0, 1), found {value!r}")
            elif not math.isfinite(value) or value < 0 or (key == "lease" and value == 0):
                problems.add(where, f"`{key}:` must be a positive number of seconds, got {value!r}")
            else:
                values[key] = value
        lease, heartbeat = values.get("lease"), values.get("heartbeat")
        if lease is not None and heartbeat is not None and heartbeat >= lease:
            problems.add(
                settings.where("heartbeat"),
                f"`heartbeat:` ({heartbeat}) must be shorter than `lease:` ({lease})",
                "renew a lease a few times before it expires, e.g. heartbeat = lease / 3",
            )
        result[job_type] = JobOptions(**values)
    return result


def parse_metadata(root: YamlMap, problems: Problems) -> dict[str, Any]:
    """`metadata:` plus the top-level description/version/machine_name/job_type/config keys."""
    value = root.get("metadata")
    metadata: dict[str, Any] = {}
    if isinstance(value, YamlMap):
        metadata = plain(value)
    elif value is not None:
        problems.add(root.where("metadata"), "`metadata:` must be a mapping")
    for key in METADATA_EXTRAS:
        if key in root and key not in metadata:
            metadata[key] = plain(root[key])
    return metadata
