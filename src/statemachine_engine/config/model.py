"""The neutral machine model every YAML dialect normalises into; the engine only sees this."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from statemachine_engine.actions.params import Declaration

WILDCARD = "*"
TIMEOUT_RE = re.compile(r"^timeout\((\d+(?:\.\d+)?)\)$")
DEFAULT_IDLE_EVENTS = frozenset({"no_jobs", "no_events"})
DEFAULT_MAX_INSTANT_STEPS = 1000
#: Shortest `timeout(N)` accepted: a shorter timer is a busy loop, not a timeout.
MIN_TIMEOUT = 0.001
#: `options.restart`: where a machine starts when its process starts again.
RESTART_MODES = ("initial", "resume")
#: The event `options.max_dwell` fires when `options.stuck_event` does not name another.
DEFAULT_STUCK_EVENT = "stuck"


@dataclass(frozen=True)
class Position:
    """Where something was written: file, 1-based line and column."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class ActionSpec:
    """One action to run: its type, its parameters (flat, `params:` merged in) and where it is."""

    type: str
    params: Mapping[str, Any]
    pos: Position
    description: str | None = None

    def strings(self) -> Iterator[str]:
        """Every string among the parameters (nested mappings and lists included)."""
        return _strings(self.params)


@dataclass(frozen=True)
class Transition:
    """`source --event--> target`; source may be WILDCARD; `timeout` is set for `timeout(N)`."""

    source: str
    target: str
    event: str
    pos: Position
    timeout: float | None = None


@dataclass(frozen=True)
class EventSpec:
    """A declared event; context_map copies incoming payload paths into lasting context keys."""

    name: str
    pos: Position
    context_map: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class JobOptions:
    """Queue settings for one job type (`options: {jobs: {<type>: {...}}}`); None means the
    machine's default (command-line flags)."""

    lease: float | None = None
    heartbeat: float | None = None
    max_attempts: int | None = None
    backoff: float | None = None
    jitter: float | None = None


@dataclass(frozen=True)
class MachineDefinition:
    """A validated machine: states, events, transitions and the entry actions of each state.

    `entry_actions[state]` is already in execution order: the `actions:` map entry first, then
    the actions listed on transitions leaving that state, in file order.
    """

    name: str
    initial_state: str
    states: tuple[str, ...]
    events: Mapping[str, EventSpec]
    transitions: tuple[Transition, ...]
    entry_actions: Mapping[str, tuple[ActionSpec, ...]]
    source: str
    digest: str
    state_pos: Mapping[str, Position] = field(default_factory=dict)
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    context_defaults: Mapping[str, Any] = field(default_factory=dict)
    idle_events: frozenset[str] = DEFAULT_IDLE_EVENTS
    job_options: Mapping[str, JobOptions] = field(default_factory=dict)
    template: bool = False
    text: str = ""
    failure_events: frozenset[str] = frozenset()
    #: `options.on_error`: state (or "*" for any) -> where a failure without a transition goes.
    on_error: Mapping[str, str] = field(default_factory=dict)
    max_instant_steps: int = DEFAULT_MAX_INSTANT_STEPS
    #: `options.restart`: "initial" starts over (the released behaviour), "resume"
    #: continues in the last committed state with its context and timers (core.resume).
    restart: str = "initial"
    #: `options.max_dwell`: state -> seconds it may last before `stuck_event` and an alert.
    max_dwell: Mapping[str, float] = field(default_factory=dict)
    stuck_event: str = DEFAULT_STUCK_EVENT
    _own: Mapping[str, tuple[Transition, ...]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )
    _outgoing: Mapping[str, tuple[Transition, ...]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        # Indexes by source state, built once: lookups run at every state entry and the
        # linter asks for every state, so a scan of all transitions each time is quadratic.
        own: dict[str, list[Transition]] = {}
        for transition in self.transitions:
            own.setdefault(transition.source, []).append(transition)
        indexed = {key: tuple(value) for key, value in own.items()}
        wild = indexed.get(WILDCARD, ())
        outgoing = {state: indexed.get(state, ()) + wild for state in self.states}
        object.__setattr__(self, "_own", indexed)
        object.__setattr__(self, "_outgoing", outgoing)

    def on_error_target(self, state: str) -> str | None:
        """Where a failure with no transition from `state` sends the machine, if configured."""
        return self.on_error.get(state, self.on_error.get(WILDCARD))

    def outgoing(self, state: str) -> tuple[Transition, ...]:
        """Transitions that leave `state`: its own first, then wildcard ones, in file order."""
        found = self._outgoing.get(state)
        if found is None:
            return self._own.get(state, ()) + self._own.get(WILDCARD, ())
        return found

    def own_transitions(self, state: str) -> tuple[Transition, ...]:
        """Transitions whose source is `state` itself (wildcards excluded), in file order."""
        return self._own.get(state, ())

    def reachable(self) -> set[str]:
        """The states some path of transitions leads to from the initial state."""
        seen = {self.initial_state}
        todo = [self.initial_state]
        while todo:
            for transition in self.outgoing(todo.pop()):
                if transition.target not in seen:
                    seen.add(transition.target)
                    todo.append(transition.target)
        return seen

    def is_final(self, state: str) -> bool:
        """A state with no outgoing transitions of its own (wildcards aside) is final."""
        return state not in self._own

    def timeouts(self, state: str) -> tuple[Transition, ...]:
        """The `timeout(N)` transitions that apply in `state`."""
        return tuple(t for t in self.outgoing(state) if t.timeout is not None)

    @property
    def job_types(self) -> frozenset[str]:
        """Job types this machine claims (from its queue actions), used to filter wake-ups."""
        found: set[str] = set()
        for actions in self.entry_actions.values():
            for spec in actions:
                job_type = spec.params.get("job_type")
                if spec.type in {"check_database_queue", "claim_job"} and isinstance(job_type, str):
                    found.add(job_type)
        return frozenset(found)


class ActionCatalog(Protocol):
    """What the loader needs to know about available action types."""

    def names(self) -> frozenset[str]:
        """Every action type name that can be resolved."""
        ...

    def provides(self, action_type: str) -> frozenset[str] | None:
        """Context keys an action type may set, or None when it cannot say (custom actions)."""
        ...

    def declaration(self, action_type: str) -> Declaration:
        """The parameters and events an action type declares (empty when it declares none)."""
        ...


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)
