"""Loads a machine YAML file, in either dialect, into one validated MachineDefinition."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Collection
from pathlib import Path
from typing import Any

from statemachine_engine.config.actionspecs import ParsedAction, parse_actions
from statemachine_engine.config.dwell import parse_max_dwell, parse_stuck_event
from statemachine_engine.config.model import (
    DEFAULT_IDLE_EVENTS,
    DEFAULT_MAX_INSTANT_STEPS,
    MIN_TIMEOUT,
    TIMEOUT_RE,
    WILDCARD,
    ActionCatalog,
    ActionSpec,
    EventSpec,
    MachineDefinition,
    Position,
    Transition,
)
from statemachine_engine.config.placeholders import check_placeholders, known_roots
from statemachine_engine.config.problems import Problems, did_you_mean
from statemachine_engine.config.sections import (
    name_error,
    parse_context,
    parse_events,
    parse_failure_events,
    parse_groups,
    parse_idle_events,
    parse_job_options,
    parse_max_instant_steps,
    parse_metadata,
    parse_on_error,
    parse_restart,
    parse_states,
)
from statemachine_engine.config.shellcheck import check_shell_commands
from statemachine_engine.config.yamlsource import (
    MAX_BYTES,
    YamlList,
    YamlMap,
    YamlStr,
    check_size,
    read_yaml,
)
from statemachine_engine.errors import ConfigError
from statemachine_engine.names import shown

TOP_LEVEL_KEYS = (
    "name",
    "description",
    "version",
    "initial_state",
    "states",
    "events",
    "transitions",
    "actions",
    "metadata",
    "template",
    "groups",
    "context",
    "options",
    "machine_name",
    "job_type",
    "config",
)
TRANSITION_KEYS = ("from", "to", "event", "actions", "description")
_TIMEOUT_LIKE_RE = re.compile(r"timeout\s*\(")
_IDLE_ACTIONS = ("check_database_queue", "check_events")


def load_definition(
    path: str | os.PathLike[str],
    catalog: ActionCatalog,
    *,
    extra_context_keys: Collection[str] = (),
    outline: bool = False,
) -> MachineDefinition:
    """Read and validate the machine file at `path`; every failure is a ConfigError.
    `outline`: states, events and transitions only (for diagrams): actions that do not
    resolve or check are left out instead of failing the load."""
    source = os.fspath(path)
    try:
        with open(source, "rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError(f"cannot read {source}: {reason}", file=source) from None
    check_size(len(data), source)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"file is not valid UTF-8 (byte {exc.start})",
            file=source,
            hint="save the file as UTF-8",
        ) from None
    digest = hashlib.sha256(data).hexdigest()
    return _build(text, source, digest, catalog, extra_context_keys, outline)


def parse_definition(
    text: str,
    source: str,
    catalog: ActionCatalog,
    *,
    extra_context_keys: Collection[str] = (),
    outline: bool = False,
) -> MachineDefinition:
    """Validate machine YAML given as text; `source` names it in errors and in the result."""
    data = text.encode("utf-8", "surrogatepass")
    check_size(len(data), source)
    digest = hashlib.sha256(data).hexdigest()
    return _build(text, source, digest, catalog, extra_context_keys, outline)


def collect_errors(
    path: str | os.PathLike[str],
    catalog: ActionCatalog,
    *,
    extra_context_keys: Collection[str] = (),
) -> tuple[MachineDefinition | None, list[ConfigError]]:
    """Load `path` like `load_definition`, but return every error found (in file order)
    instead of raising the first; used by the validator."""
    try:
        return load_definition(path, catalog, extra_context_keys=extra_context_keys), []
    except ConfigError as first:
        source = os.fspath(path)
        problems = Problems()
        try:
            text = Path(source).read_text("utf-8")
            root = read_yaml(text, source)
            _Builder(root, text, source, catalog, problems).build("", extra_context_keys)
        except (ConfigError, OSError, UnicodeDecodeError):
            pass
        errors = sorted(problems.errors, key=lambda e: (e.line or 0, e.column or 0))
        if str(first) not in {str(e) for e in errors}:
            errors.insert(0, first)
        return None, errors


def _build(
    text: str,
    source: str,
    digest: str,
    catalog: ActionCatalog,
    extra_context_keys: Collection[str],
    outline: bool = False,
) -> MachineDefinition:
    root = read_yaml(text, source)
    builder = _Builder(root, text, source, catalog, Problems(), outline=outline)
    return builder.build(digest, extra_context_keys)


class _Builder:
    """Walks the top-level mapping once, recording every error, then assembles the model."""

    def __init__(
        self,
        root: YamlMap,
        text: str,
        source: str,
        catalog: ActionCatalog,
        problems: Problems,
        *,
        outline: bool = False,
    ) -> None:
        self.root = root
        self.outline = outline
        self.text = text
        self.source = source
        self.catalog = catalog
        self.problems = problems
        self.actions: list[ParsedAction] = []
        self.mentions: dict[str, Position] = {}
        self.event_pos: dict[str, Position] = {}

    def build(self, digest: str, extra_context_keys: Collection[str]) -> MachineDefinition:
        root, problems = self.root, self.problems
        self.check_top_level_keys()
        name = self.string("name") or Path(self.source).stem
        initial = self.string("initial_state")
        if initial is None and root.get("initial_state") is None:
            problems.add(
                root.where("initial_state"),
                "missing `initial_state`",
                "add `initial_state: <state>` naming the state the machine starts in",
            )
        if initial is not None and (invalid := name_error(initial, "state name")) is not None:
            problems.add(root.where("initial_state"), invalid)
            initial = None
        states = parse_states(root, problems)
        events = parse_events(root, problems)
        known = None if states is None else set(states)
        transitions, leaving = self.transitions(known, events)
        if states is None:
            states = _derive_states(initial, transitions)
        elif initial is not None and initial not in known_or(known, states):
            problems.add(
                root.where("initial_state"),
                f"initial_state '{initial}' is not a declared state",
                did_you_mean(initial, states),
            )
        state_actions = self.state_actions(set(states))
        entry_actions = {
            state: tuple(state_actions.get(state, [])) + tuple(leaving.get(state, []))
            for state in states
        }
        context_defaults = parse_context(root, problems)
        groups = parse_groups(root, self.text, states, problems)
        idle_events = parse_idle_events(root, problems) | DEFAULT_IDLE_EVENTS
        idle_events |= self.empty_events()
        job_options = parse_job_options(root, problems)
        failure_events = parse_failure_events(root, problems)
        on_error = parse_on_error(root, states, problems)
        max_instant_steps = parse_max_instant_steps(root, problems)
        restart = parse_restart(root, problems)
        max_dwell = parse_max_dwell(root, states, problems)
        stuck_event = parse_stuck_event(root, problems)
        template = self.template()
        metadata = parse_metadata(root, problems)

        roots = (
            None if self.outline else known_roots(self.actions, self.catalog, extra_context_keys)
        )
        if roots is not None:
            roots |= set(context_defaults)
            for spec in (events or {}).values():
                roots |= set(spec.context_map)
            strict = [a for a in self.actions if not self.renders_missing(a.spec.type)]
            check_placeholders(strict, roots, problems)
        if not self.outline:
            check_shell_commands(self.actions, self.text, problems)

        problems.raise_first()
        if events is None:
            events = {}
            for transition in transitions:
                if transition.timeout is None and transition.event not in events:
                    pos = self.event_pos.get(transition.event, transition.pos)
                    events[transition.event] = EventSpec(transition.event, pos)
        return MachineDefinition(
            name=name,
            initial_state=str(initial),
            states=tuple(states),
            events=events,
            transitions=tuple(transitions),
            entry_actions=entry_actions,
            source=self.source,
            digest=digest,
            state_pos=self.state_positions(states),
            groups=groups,
            metadata=metadata,
            context_defaults=context_defaults,
            idle_events=frozenset(idle_events),
            job_options=job_options,
            template=template,
            text=self.text,
            failure_events=failure_events,
            on_error=on_error,
            max_instant_steps=max_instant_steps or DEFAULT_MAX_INSTANT_STEPS,
            restart=restart,
            max_dwell=max_dwell,
            stuck_event=stuck_event,
        )

    def parse_actions(self, value: Any, where: Position) -> list[ParsedAction]:
        """An action list; in outline mode its errors are dropped with the bad actions."""
        if not self.outline:
            return parse_actions(value, where, self.catalog, self.problems)
        try:
            return parse_actions(value, where, self.catalog, Problems())
        except ConfigError:  # an action module that fails to import
            return []

    def renders_missing(self, action_type: str) -> bool:
        """True for log-like actions: a missing placeholder is shown, not an error (SM124)."""
        try:
            return self.catalog.declaration(action_type).renders_missing
        except ConfigError:
            return False

    def state_positions(self, states: list[str]) -> dict[str, Position]:
        """Where each state is declared, or first mentioned when `states:` is absent."""
        listed = self.root.get("states")
        positions: dict[str, Position] = {}
        if isinstance(listed, YamlList):
            for name in listed:
                if isinstance(name, YamlStr) and name not in positions:
                    positions[str(name)] = name.pos
        for name in states:
            positions.setdefault(name, self.mentions.get(name, self.root.where("initial_state")))
        return positions

    def check_top_level_keys(self) -> None:
        for key in self.root:
            if key not in TOP_LEVEL_KEYS:
                self.problems.add(
                    self.root.where_key(key),
                    f"unknown top-level key {str(key)!r}",
                    did_you_mean(str(key), TOP_LEVEL_KEYS),
                )

    def string(self, key: str, mapping: YamlMap | None = None) -> str | None:
        """The string under `key`, or None (recording an error if it is not a string)."""
        mapping = self.root if mapping is None else mapping
        value = mapping.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            self.problems.add(mapping.where(key), f"`{key}:` must be a non-empty string")
            return None
        return str(value)

    def template(self) -> bool:
        value = self.root.get("template", False)
        if not isinstance(value, bool):
            self.problems.add(
                self.root.where("template"),
                "`template:` must be true or false",
                "yes/no/on/off are plain strings in these files",
            )
            return False
        return value

    def state_ref(self, value: Any, where: Position, states: set[str] | None, what: str) -> bool:
        """Check that `value` names a declared state; `what` is e.g. 'transition to'."""
        if not isinstance(value, str) or not value:
            self.problems.add(where, f"{what}: expected a state name, found {shown(value)}")
            return False
        invalid = None if value == WILDCARD else name_error(value, "state name")
        if invalid is not None:
            self.problems.add(where, invalid)
            return False
        if states is not None and value not in states:
            hint = did_you_mean(value, states)
            if value == WILDCARD:
                hint = "'*' may only be used in `from:`"
            self.problems.add(where, f"{what} undeclared state '{value}'", hint)
            return False
        self.mentions.setdefault(str(value), where)
        return True

    def transitions(
        self, states: set[str] | None, events: dict[str, EventSpec] | None
    ) -> tuple[list[Transition], dict[str, list[ActionSpec]]]:
        """All transitions (a `from:` list expands to one each) and actions per source state."""
        value = self.root.get("transitions")
        result: list[Transition] = []
        leaving: dict[str, list[ActionSpec]] = {}
        if value is None:
            return result, leaving
        if not isinstance(value, YamlList):
            self.problems.add(
                self.root.where("transitions"),
                "`transitions:` must be a list",
                "write `- {from: a, to: b, event: e}` items",
            )
            return result, leaving
        for index, item in enumerate(value):
            if not isinstance(item, YamlMap):
                self.problems.add(
                    value.where(index),
                    "a transition must be a mapping",
                    "write `- {from: a, to: b, event: e}`",
                )
                continue
            self.transition(item, states, events, result, leaving)
        return result, leaving

    def transition(
        self,
        item: YamlMap,
        states: set[str] | None,
        events: dict[str, EventSpec] | None,
        result: list[Transition],
        leaving: dict[str, list[ActionSpec]],
    ) -> None:
        problems = self.problems
        unknown = [key for key in item if key not in TRANSITION_KEYS]
        for key in unknown:
            problems.add(
                item.where_key(key),
                f"unknown transition key {str(key)!r}",
                did_you_mean(str(key), TRANSITION_KEYS),
            )
        missing = [key for key in ("from", "to", "event") if key not in item]
        if missing and not unknown:
            problems.add(item.pos, f"transition has no `{missing[0]}:`")
        ok = not missing
        sources = self.sources(item, states)
        target = item.get("to")
        ok = ok and sources is not None
        if "to" in item and not self.state_ref(target, item.where("to"), states, "transition to"):
            ok = False
        event, timeout = self.event(item, events)
        actions = self.parse_actions(item.get("actions"), item.where("actions"))
        self.actions.extend(actions)
        if actions and sources is not None and WILDCARD in sources:
            problems.add(
                item.where_key("actions"),
                "a transition from '*' cannot carry actions",
                "transition actions run on entering their source state and '*' is not a state;"
                " put them in the `actions:` map of the states that need them",
            )
        if not ok or sources is None or event is None:
            return
        for source in sources:
            result.append(Transition(source, str(target), event, item.pos, timeout))
            leaving.setdefault(source, []).extend(action.spec for action in actions)

    def sources(self, item: YamlMap, states: set[str] | None) -> list[str] | None:
        """The `from:` states: one name, '*', or a list of names."""
        if "from" not in item:
            return None
        value = item["from"]
        where = item.where("from")
        if isinstance(value, YamlList):
            if not value:
                self.problems.add(where, "`from:` list is empty")
                return None
            refs = [(name, value.where(index)) for index, name in enumerate(value)]
        else:
            refs = [(value, where)]
        sources: list[str] = []
        for name, pos in refs:
            if name == WILDCARD or self.state_ref(name, pos, states, "transition from"):
                sources.append(str(name))
        return sources if len(sources) == len(refs) else None

    def event(
        self, item: YamlMap, events: dict[str, EventSpec] | None
    ) -> tuple[str | None, float | None]:
        """The transition's event name and, for `timeout(N)`, its seconds."""
        if "event" not in item:
            return None, None
        value = item["event"]
        where = item.where("event")
        if not isinstance(value, str) or not value:
            self.problems.add(where, f"`event:` must be an event name, found {shown(value)}")
            return None, None
        if _TIMEOUT_LIKE_RE.match(value):
            match = TIMEOUT_RE.fullmatch(value)
            seconds = float(match.group(1)) if match else 0.0
            if not match or seconds < MIN_TIMEOUT:
                self.problems.add(
                    where,
                    f"bad timeout event {shown(value)}",
                    f"write timeout(N) with N seconds of at least {MIN_TIMEOUT:g} (a shorter"
                    " timer is a busy loop), e.g. `event: timeout(30)`",
                )
                return None, None
            return str(value), seconds
        invalid = name_error(value, "event name")
        if invalid is not None:
            self.problems.add(where, invalid)
            return None, None
        if events is not None and value not in events:
            hint = did_you_mean(value, events) or "declare it under `events:`"
            self.problems.add(where, f"transition on undeclared event '{value}'", hint)
            return None, None
        self.event_pos.setdefault(str(value), where)
        return str(value), None

    def state_actions(self, states: set[str]) -> dict[str, list[ActionSpec]]:
        """The top-level `actions:` map: state -> actions run on entering it."""
        value = self.root.get("actions")
        result: dict[str, list[ActionSpec]] = {}
        if value is None:
            return result
        if not isinstance(value, YamlMap):
            self.problems.add(
                self.root.where("actions"),
                "`actions:` must map state names to lists of actions",
                "write `actions: {waiting: [{type: log, message: hi}]}`",
            )
            return result
        for state, actions in value.items():
            parsed = self.parse_actions(actions, value.where(state))
            self.actions.extend(parsed)
            if self.state_ref(state, value.where_key(state), states, "actions for"):
                result.setdefault(str(state), []).extend(action.spec for action in parsed)
        return result

    def empty_events(self) -> set[str]:
        """`empty:` events of queue/event checks: the machine parks when one of them fires."""
        found: set[str] = set()
        for action in self.actions:
            empty = action.spec.params.get("empty")
            if action.spec.type in _IDLE_ACTIONS and isinstance(empty, str):
                found.add(empty)
        return found


def _derive_states(initial: str | None, transitions: list[Transition]) -> list[str]:
    """States of a file without `states:`: initial_state, then every transition end in order."""
    states: dict[str, None] = {} if initial is None else {initial: None}
    for transition in transitions:
        for name in (transition.source, transition.target):
            if name != WILDCARD:
                states.setdefault(name, None)
    return list(states)


def known_or(known: set[str] | None, states: list[str]) -> set[str]:
    """The declared states as a set (built once), for membership tests."""
    return known if known is not None else set(states)
