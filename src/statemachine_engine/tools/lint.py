"""The linter: definitions in, findings out (code, severity, message, hint, position).

Pure: nothing is run or imported beyond what the action catalog already resolved. A rule
that cannot be sure stays quiet; events and context keys that may come from outside the
validated set (another machine, the CLI, a custom action) never produce a warning.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from statemachine_engine.actions.params import (
    ERROR_EVENT,
    Declaration,
    events_of,
    explicit_events,
    may_return_nothing,
)
from statemachine_engine.config.actionspecs import ParsedAction
from statemachine_engine.config.model import (
    WILDCARD,
    ActionCatalog,
    ActionSpec,
    MachineDefinition,
    Position,
    Transition,
)
from statemachine_engine.config.placeholder_syntax import parse_key
from statemachine_engine.config.placeholders import BUILTIN_ROOTS, PLACEHOLDER_RE, keys_set_by
from statemachine_engine.config.problems import close_matches
from statemachine_engine.core.transitions import START_EVENT, decide
from statemachine_engine.errors import ConfigError

ERROR = "error"
WARNING = "warning"
INFO = "info"

#: Every code: (severity, what it means). Stable: codes are never reused.
CODES: Mapping[str, tuple[str, str]] = {
    "SM001": (ERROR, "the definition does not load (a load-time error)"),
    "SM101": (WARNING, "state unreachable from the initial state"),
    "SM102": (WARNING, "non-final state the machine can never leave"),
    "SM103": (WARNING, "event no action, timer or sender produces"),
    "SM104": (WARNING, "transition that can never fire"),
    "SM105": (WARNING, "action output event without a transition"),
    "SM106": (WARNING, "bash action without a success event where the state needs one"),
    "SM107": (INFO, "placeholder root no action is known to set"),
    "SM108": (WARNING, "send_event to a machine no validated config defines"),
    "SM109": (WARNING, "action's default event without a transition"),
    "SM110": (WARNING, "action that can never run"),
    "SM111": (ERROR, "missing required action parameter"),
    "SM112": (ERROR, "unknown action parameter"),
    "SM113": (ERROR, "action parameter of the wrong type"),
    "SM114": (WARNING, "cycle of instant actions that cannot end"),
    "SM115": (INFO, "cycle of instant actions (bounded by max_instant_steps)"),
    "SM120": (ERROR, "placeholder where bash runs text as code, not declared :int or :ident"),
    "SM121": (ERROR, "bash command that is not valid shell (bash -n)"),
    "SM122": (ERROR, "placeholder where no value can be escaped (backticks, ${...}, heredoc)"),
    "SM123": (ERROR, "placeholder declaring an unknown kind (not :int or :ident)"),
    "SM124": (WARNING, "placeholder in a log line that nothing sets (written as is)"),
    "SM125": (WARNING, "clear_events without event_types clears every type (1.0: none)"),
    "SM126": (INFO, "max_dwell state without a transition on its stuck event (alert only)"),
}

_NOQA_RE = re.compile(r"#\s*noqa:\s*(SM\d{3}(?:\s*,\s*SM\d{3})*)")


@dataclass(frozen=True)
class Finding:
    """One problem: where, how bad, a stable code, what is wrong and how to fix it."""

    code: str
    message: str
    file: str | None
    line: int | None = None
    column: int | None = None
    hint: str | None = None

    @property
    def severity(self) -> str:
        return CODES[self.code][0]

    @property
    def where(self) -> str:
        parts = [self.file or "-"]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)

    def __str__(self) -> str:
        text = f"{self.where}: {self.severity} {self.code} {self.message}"
        return f"{text} (hint: {self.hint})" if self.hint else text

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
        }

    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.file or "", self.line or 0, self.column or 0, self.code, self.message)


def from_config_error(error: ConfigError, source: str) -> Finding:
    """A load-time error as a finding: its own code (SM120…) if it has one, else SM001."""
    return Finding(
        error.code if error.code is not None and error.code in CODES else "SM001",
        error.message,
        error.file or source,
        error.line,
        error.column,
        error.hint,
    )


@dataclass(frozen=True)
class Machine:
    """A loaded definition, the catalog that resolved its actions and the names it runs as."""

    definition: MachineDefinition
    catalog: ActionCatalog
    names: tuple[str, ...] = ()
    extra_context_keys: frozenset[str] = field(default_factory=frozenset)

    @property
    def run_names(self) -> tuple[str, ...]:
        if self.names:
            return self.names
        name = self.definition.metadata.get("machine_name")
        return (str(name),) if name else ()


def lint(machines: Sequence[Machine], *, system: bool | None = None) -> list[Finding]:
    """Findings for `machines`, sorted by file position. `system` (default: more than one
    machine) says the set is complete: events and send_event targets are then checked
    against the senders and machines of the set."""
    complete = len(machines) > 1 if system is None else system
    senders = _Senders(machines) if complete else None
    findings: list[Finding] = []
    for machine in machines:
        findings.extend(_MachineLint(machine, senders).run())
    if senders is not None:
        findings.extend(senders.unknown_targets())
    return sorted(_unsuppressed(findings, machines), key=Finding.sort_key)


def _unsuppressed(findings: list[Finding], machines: Sequence[Machine]) -> Iterator[Finding]:
    """Drop findings whose line carries `# noqa: SMxxx` for their code."""
    lines = {m.definition.source: m.definition.text.splitlines() for m in machines}
    for finding in findings:
        text = lines.get(finding.file or "", [])
        line = text[finding.line - 1] if finding.line and finding.line <= len(text) else ""
        match = _NOQA_RE.search(line)
        codes = {c.strip() for c in match.group(1).split(",")} if match else set()
        if finding.code not in codes:
            yield finding


def _literal(value: Any) -> str | None:
    """A parameter value that is a plain name, not a placeholder."""
    return value if isinstance(value, str) and value and "{" not in value else None


def _either(spec: ActionSpec, key: str, alias: str) -> Any:
    return spec.params.get(key if key in spec.params else alias)


class _Senders:
    """What the machines of a complete set send to each other, by target machine name."""

    ANY = "*"

    def __init__(self, machines: Sequence[Machine]) -> None:
        self.names: set[str] = set()
        for machine in machines:
            self.names.update(machine.run_names)
            for spec in _all_actions(machine.definition):
                if spec.type == "start_fsm":
                    started = _literal(spec.params.get("machine_name"))
                    if started is None and spec.params.get("machine_name") is not None:
                        self.names.add(self.ANY)
                    elif started is not None:
                        self.names.add(started)
        self.sent: dict[str, set[str]] = {}
        self.sends: list[tuple[ActionSpec, str]] = []
        for machine in machines:
            for spec in _all_actions(machine.definition):
                if spec.type != "send_event":
                    continue
                raw_target = _either(spec, "target_machine", "target")
                raw_event = _either(spec, "event_type", "event")
                target = _literal(raw_target) or self.ANY
                event = _literal(raw_event) or self.ANY
                self.sent.setdefault(target, set()).add(event)
                if target != self.ANY:
                    self.sends.append((spec, target))

    def events_for(self, names: Sequence[str]) -> set[str]:
        """Events some machine of the set may send to a machine running as one of `names`."""
        found = set(self.sent.get(self.ANY, set()))
        for name in names:
            found |= self.sent.get(name, set())
        return found

    def unknown_targets(self) -> Iterator[Finding]:
        if self.ANY in self.names:
            return
        for spec, target in self.sends:
            if target in self.names:
                continue
            matches = close_matches(target, self.names)
            hint = (
                f"did you mean '{matches[0]}'?"
                if matches
                else "validate the config of that machine together with this one, or list it"
                " in the system file"
            )
            yield _at(
                "SM108",
                spec.pos,
                f"send_event targets machine '{target}', which no validated config defines",
                hint,
            )


def _all_actions(definition: MachineDefinition) -> Iterator[ActionSpec]:
    for state in definition.states:
        yield from definition.entry_actions.get(state, ())


def _at(code: str, pos: Position, message: str, hint: str | None = None) -> Finding:
    return Finding(code, message, pos.file, pos.line, pos.column, hint)


class _MachineLint:
    """The per-machine rules, sharing what each state can produce."""

    def __init__(self, machine: Machine, senders: _Senders | None) -> None:
        self.machine = machine
        self.d = machine.definition
        self.senders = senders
        self.produced: dict[str, frozenset[str] | None] = {}
        internal: set[str] = set()
        for state in self.d.states:
            found: set[str] | None = set()
            for spec in self.d.entry_actions.get(state, ()):
                out = self.outputs(spec)
                if out is None or found is None:
                    found = None
                else:
                    found |= out
            if state == self.d.initial_state and found is not None:
                found.add(START_EVENT)  # fired at boot
            if state in self.d.max_dwell and found is not None:
                found.add(self.d.stuck_event)  # fired by the dwell limit
            self.produced[state] = None if found is None else frozenset(found)
            internal |= found or set()
        self.internal = internal
        self.any_unknown = any(v is None for v in self.produced.values())
        self.wildcard_events = {t.event for t in self.d.transitions if t.source == WILDCARD}
        events = {t.event for t in self.d.transitions if t.timeout is None}
        if senders is None:
            self.external = (events - internal) | self.wildcard_events
        else:
            sent = senders.events_for(machine.run_names)
            self.external = (events if _Senders.ANY in sent else sent) | self.wildcard_events
        self.reachable = self.d.reachable()
        self.order = {state: number for number, state in enumerate(self.d.states)}

    def run(self) -> Iterator[Finding]:
        yield from self.unreachable()
        yield from self.stuck()
        yield from self.unproduced()
        yield from self.never_fire()
        yield from self.unhandled_outputs()
        yield from self.unhandled_defaults()
        yield from self.bash_without_success()
        yield from self.never_run()
        yield from self.instant_cycles()
        yield from self.placeholders()
        yield from self.clear_all_events()
        yield from self.alert_only_dwell()

    def declaration(self, spec: ActionSpec) -> Declaration:
        try:
            return self.machine.catalog.declaration(spec.type)
        except ConfigError:
            return Declaration()

    def outputs(self, spec: ActionSpec) -> frozenset[str] | None:
        """Every event the action may return (`error` included), or None if unknown."""
        known = events_of(self.declaration(spec), spec.params)
        if known is None:
            return None
        return known[0] | known[1] | {ERROR_EVENT}

    def always_leaves(self, state: str, spec: ActionSpec) -> bool:
        """True when every outcome of the action ends the state's action list: each event
        has a transition from `state` or is a failure (which leaves or stops the list)."""
        declaration = self.declaration(spec)
        known = events_of(declaration, spec.params)
        if known is None or declaration.other_events:
            return False
        if may_return_nothing(declaration, spec.params):
            return False
        return all(decide(self.d, state, event) is not None for event in known[0])

    def waits_for_outside(self, state: str) -> bool:
        """The state has transitions on events from outside (or timers): a machine that runs
        its actions there and then waits is doing what it was written for."""
        own = self.d.own_transitions(state)
        return any(
            t.timeout is not None or t.event in self.external - self.wildcard_events for t in own
        )

    def can_occur(self, state: str, transition: Transition) -> bool:
        if transition.timeout is not None:
            return True
        produced = self.produced.get(state)
        return (
            produced is None or transition.event in produced or (transition.event in self.external)
        )

    def state_pos(self, state: str) -> Position:
        return self.d.state_pos.get(state, Position(self.d.source, 1, 1))

    def unreachable(self) -> Iterator[Finding]:
        for state in self.d.states:
            if state not in self.reachable:
                yield _at(
                    "SM101",
                    self.state_pos(state),
                    f"state '{state}' cannot be reached from the initial state"
                    f" '{self.d.initial_state}'",
                    "add a transition into it, or remove it",
                )

    def stuck(self) -> Iterator[Finding]:
        for state in self.d.states:
            if state not in self.reachable or self.d.is_final(state):
                continue
            if not any(self.can_occur(state, t) for t in self.d.outgoing(state)):
                events = ", ".join(sorted({t.event for t in self.d.outgoing(state)}))
                yield _at(
                    "SM102",
                    self.state_pos(state),
                    f"state '{state}' is not final but none of its transitions ({events})"
                    " can fire: the machine would wait there forever",
                    "give the state an action that returns one of those events, a"
                    " timeout(N) transition, or remove its transitions to make it final",
                )

    def unproduced(self) -> Iterator[Finding]:
        if self.senders is None or self.any_unknown:
            return
        seen: set[str] = set()
        for transition in self.d.transitions:
            event = transition.event
            if transition.timeout is not None or event in seen:
                continue
            seen.add(event)
            if event in self.internal or event in self.external:
                continue
            names = ", ".join(self.machine.run_names) or "this machine"
            yield _at(
                "SM103",
                transition.pos,
                f"event '{event}' is produced by no action or timer of this machine and"
                f" sent to {names} by no machine of the set",
                "return it from an action (e.g. `success: "
                f"{event}`), send it with send_event from another machine, or remove the"
                " transition",
            )

    def never_fire(self) -> Iterator[Finding]:
        first: dict[tuple[str, str], Transition] = {}
        for transition in self.d.transitions:
            key = (transition.source, transition.event)
            earlier = first.setdefault(key, transition)
            if earlier is not transition:
                yield _at(
                    "SM104",
                    transition.pos,
                    f"transition {transition.source} --{transition.event}--> "
                    f"{transition.target} never fires: the one at line {earlier.pos.line}"
                    " has the same source and event and wins",
                    "remove one of the two",
                )
                continue
            source = transition.source
            if source == WILDCARD or source not in self.reachable:
                continue
            if self.can_occur(source, transition):
                continue
            unproduced_set = (
                self.senders is not None
                and transition.event not in self.internal
                and transition.event not in self.external
            )
            if unproduced_set:
                continue
            yield _at(
                "SM104",
                transition.pos,
                f"transition {source} --{transition.event}--> {transition.target} never"
                f" fires: no action of '{source}' returns '{transition.event}'",
                f"return '{transition.event}' from an action of '{source}', or remove the"
                " transition",
            )

    def unhandled_outputs(self) -> Iterator[Finding]:
        for state in self.d.states:
            if self.d.is_final(state):
                continue
            for spec in self.d.entry_actions.get(state, ()):
                for key, event, _ in explicit_events(self.declaration(spec), spec.params):
                    if event in self.d.idle_events or decide(self.d, state, event):
                        continue
                    yield _at(
                        "SM105",
                        spec.pos,
                        f"{spec.type} in state '{state}' returns '{event}' (`{key}:`) but"
                        f" '{state}' has no transition on '{event}'",
                        f"add `- {{from: {state}, to: <state>, event: {event}}}` or change"
                        f" `{key}:`",
                    )

    def unhandled_defaults(self) -> Iterator[Finding]:
        """A built-in's default event (not configured) with no transition: the machine goes
        on with the next action or, at the end of the list, waits without a word."""
        for state in self.d.states:
            if self.d.is_final(state):
                continue
            actions = self.d.entry_actions.get(state, ())
            for index, spec in enumerate(actions):
                last = index == len(actions) - 1
                if last and spec.type == "bash":
                    continue  # SM106 says it better
                if last and self.waits_for_outside(state):
                    continue
                for emits in self.declaration(spec).all_emits:
                    event = emits.default
                    if emits.failure or event is None or emits.key in spec.params:
                        continue
                    if emits.if_handled:
                        continue  # returned only when the state has a transition on it
                    if event in self.d.idle_events or decide(self.d, state, event):
                        continue
                    yield _at(
                        "SM109",
                        spec.pos,
                        f"{spec.type} in state '{state}' returns '{event}' by default"
                        f" (`{emits.key}:` is not set), which has no transition from"
                        f" '{state}'",
                        f"set `{emits.key}:` to the event of the transition that should"
                        f" follow, or add `- {{from: {state}, to: <state>, event: {event}}}`",
                    )

    def never_run(self) -> Iterator[Finding]:
        """Actions after one that always leaves the state can never run; nor those of the
        initial state when `start` fires at boot."""
        initial = self.d.initial_state
        booted = decide(self.d, initial, START_EVENT)
        if booted is not None and booted.source != WILDCARD:
            for spec in self.d.entry_actions.get(initial, ()):
                yield _at(
                    "SM110",
                    spec.pos,
                    f"{spec.type} in state '{initial}' can never run: the transition on"
                    f" 'start' (line {booted.pos.line}) fires when the machine boots",
                    "move the action into the state that follows, or rename the event",
                )
        for state in self.d.states:
            actions = self.d.entry_actions.get(state, ())
            for index, spec in enumerate(actions[:-1]):
                if not self.always_leaves(state, spec):
                    continue
                for later in actions[index + 1 :]:
                    yield _at(
                        "SM110",
                        later.pos,
                        f"{later.type} in state '{state}' can never run: {spec.type} (line"
                        f" {spec.pos.line}) before it always leaves the state",
                        "move it before that action, or into the state that follows",
                    )
                break

    def instant_cycles(self) -> Iterator[Finding]:
        """Cycles of states that run only instant actions taking no outside input and fire
        each other: the machine never waits while it goes round (§13.4 loop guard)."""
        instant = {state for state in self.d.states if self.is_instant(state)}
        edges: dict[str, list[Transition]] = {state: [] for state in instant}
        for state in instant:
            produced = self.produced.get(state) or frozenset()
            for transition in self.d.outgoing(state):
                if transition.event not in produced or transition.target not in instant:
                    continue
                if transition.target == state and transition.event in self.d.idle_events:
                    continue
                edges[state].append(transition)
        for component in _cycles(edges):
            states = sorted(component, key=self.order.__getitem__)
            inside = [t for s in states for t in edges[s] if t.target in component]
            first = min(inside, key=lambda t: (t.pos.line, t.pos.column))
            path = " -> ".join([*states, states[0]])
            leaves = any(self.may_leave(state, component) for state in states)
            if leaves:
                yield _at(
                    "SM115",
                    first.pos,
                    f"states {path} run only instant actions and fire each other: the"
                    " machine does not wait while it goes round (it stops with loop_detected"
                    f" after {self.d.max_instant_steps} steps)",
                    "fine for a bounded loop such as draining a list; raise"
                    " options.max_instant_steps if it may run longer",
                )
            else:
                yield _at(
                    "SM114",
                    first.pos,
                    f"states {path} run only instant actions and fire each other with no way"
                    " out: an endless loop (stopped by loop_detected after"
                    f" {self.d.max_instant_steps} steps)",
                    "give the cycle an exit, or a step that waits (an event, a timeout(N), a job)",
                )

    def is_instant(self, state: str) -> bool:
        actions = self.d.entry_actions.get(state, ())
        if not actions or self.d.is_final(state):
            return False
        declarations = [self.declaration(spec) for spec in actions]
        return all(d.instant and not d.takes_input for d in declarations)

    def may_leave(self, state: str, component: set[str]) -> bool:
        """True when the machine may leave `component` from `state`: an event it produces
        leads outside, or its actions may run out without firing (then it waits)."""
        produced = self.produced.get(state) or frozenset()
        for transition in self.d.outgoing(state):
            if transition.event in produced and transition.target not in component:
                return True
        actions = self.d.entry_actions.get(state, ())
        return not any(self.always_leaves(state, spec) for spec in actions)

    def bash_without_success(self) -> Iterator[Finding]:
        for state in self.d.states:
            actions = self.d.entry_actions.get(state, ())
            if not actions or self.d.is_final(state) or self.d.timeouts(state):
                continue
            last = actions[-1]
            if last.type != "bash" or "success" in last.params:
                continue
            if decide(self.d, state, "job_done") is not None:
                continue
            own = self.d.own_transitions(state)
            if any(t.event in self.external - self.wildcard_events for t in own):
                continue  # runs the command, then waits for an event from outside
            leaving = sorted({t.event for t in self.d.outgoing(state) if t.timeout is None})
            choice = leaving[0] if leaving else "<event>"
            yield _at(
                "SM106",
                last.pos,
                f"bash in state '{state}' has no `success:`; on exit 0 it returns 'job_done',"
                f" which has no transition from '{state}'",
                f"add `success: {choice}` (the event of the transition that should follow)",
            )

    def clear_all_events(self) -> Iterator[Finding]:
        """`clear_events` without `event_types`: 2.0 clears every pending event, the
        released package cleared none."""
        for spec in _all_actions(self.d):
            if spec.type != "clear_events" or "event_types" in spec.params:
                continue
            yield _at(
                "SM125",
                spec.pos,
                "clear_events without `event_types` clears every pending event of the machine"
                " (statemachine-engine 1.0 cleared none)",
                "name the types with `event_types: [...]`, or remove the action if it was"
                " meant to do nothing",
            )

    def alert_only_dwell(self) -> Iterator[Finding]:
        """A `max_dwell` state with no transition on the stuck event and no timer: past
        the limit the machine is only reported stuck and stays (legal, worth knowing)."""
        event = self.d.stuck_event
        for state, seconds in self.d.max_dwell.items():
            if decide(self.d, state, event) is not None or self.d.timeouts(state):
                continue
            yield _at(
                "SM126",
                self.state_pos(state),
                f"state '{state}' has max_dwell {seconds:g} s but no transition on '{event}'"
                " and no timeout(N): past the limit the machine is only reported stuck",
                f"add `{{from: {state}, to: <state>, event: {event}}}` to act on it, or keep"
                " the alert and silence this with `# noqa: SM126`",
            )

    def placeholders(self) -> Iterator[Finding]:
        """Roots the load-time check could not verify because a custom action cannot say
        which context keys it sets; reported as info, since that action may set them."""
        specs = list(_all_actions(self.d))
        silent: list[str] = []
        roots = set(BUILTIN_ROOTS) | set(self.machine.extra_context_keys)
        roots |= set(self.d.context_defaults)
        for event in self.d.events.values():
            roots |= set(event.context_map)
        for spec in specs:
            try:
                provided = self.machine.catalog.provides(spec.type)
            except ConfigError:
                provided = None
            if provided is None:
                silent.append(spec.type)
            else:
                roots |= provided
            roots |= keys_set_by(ParsedAction(spec, dict(spec.params)))
        if not silent:
            yield from self.shown_placeholders(specs, roots)
            return
        custom = ", ".join(sorted(set(silent)))
        for spec in specs:
            for text in spec.strings():
                for match in PLACEHOLDER_RE.finditer(text):
                    if match.group(1) in roots:
                        continue
                    yield _at(
                        "SM107",
                        spec.pos,
                        f"placeholder '{match.group(0)}' in {spec.type}: no action is known to"
                        f" set '{match.group(1)}' (not checked at load time because {custom}"
                        " does not declare `provides`)",
                        "declare `provides = frozenset({...})` on the custom action class, or"
                        " give the key a default under `context:`",
                    )

    def shown_placeholders(self, specs: list[ActionSpec], roots: set[str]) -> Iterator[Finding]:
        """Placeholders of log-like actions that nothing sets: the loader accepts them (the
        line shows `{x}` and a WARNING at run time), the linter says so."""
        for spec in specs:
            if not self.declaration(spec).renders_missing:
                continue
            for text in spec.strings():
                for match in PLACEHOLDER_RE.finditer(text):
                    unknown = [r for r in parse_key(match.group(0)[1:-1]).roots if r not in roots]
                    if not unknown:
                        continue
                    yield _at(
                        "SM124",
                        spec.pos,
                        f"placeholder '{match.group(0)}' in {spec.type}: nothing sets"
                        f" '{unknown[0]}'; the line shows it as written",
                        "set it with a `set_context` action, give it a default under `context:`,"
                        " or write {{ and }} for literal braces",
                    )


def _cycles(edges: Mapping[str, Sequence[Transition]]) -> list[set[str]]:
    """The strongly connected components of the graph that contain a cycle (Tarjan, written
    with an explicit stack so a chain of thousands of states cannot exhaust recursion)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def close(node: str) -> None:
        component: set[str] = set()
        while True:
            member = stack.pop()
            on_stack.discard(member)
            component.add(member)
            if member == node:
                break
        looped = len(component) > 1 or any(t.target == node for t in edges.get(node, ()))
        if looped:
            found.append(component)

    for root in edges:
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, position = work.pop()
            if position == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            out = edges.get(node, ())
            descended = False
            while position < len(out):
                target = out[position].target
                position += 1
                if target not in index:
                    work.append((node, position))
                    work.append((target, 0))
                    descended = True
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            if descended:
                continue
            if low[node] == index[node]:
                close(node)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return found
