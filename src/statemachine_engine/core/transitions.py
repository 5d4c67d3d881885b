"""The pure transition function: in state S, event E → which transition, if any."""

from __future__ import annotations

from statemachine_engine.config.model import MachineDefinition, Transition

ERROR_EVENT = "error"
START_EVENT = "start"
"""Fired once when a machine boots (the released package's convention): a transition on it
from the initial state is taken before that state's actions run."""


def decide(definition: MachineDefinition, state: str, event: str) -> Transition | None:
    """The transition `event` fires from `state`: the state's own first, then wildcards,
    each in file order; None when there is none."""
    for transition in definition.outgoing(state):
        if transition.event == event:
            return transition
    return None


def is_idle(definition: MachineDefinition, transition: Transition, state: str) -> bool:
    """A self-transition on a "nothing to do" event (no_jobs, no_events, ...): the machine
    parks until woken instead of re-running its actions at once."""
    return transition.target == state and transition.event in definition.idle_events


def next_timeout(
    definition: MachineDefinition, state: str, entered_at: float
) -> tuple[float, Transition] | None:
    """The earliest `timeout(N)` transition of `state` and when it is due (ties: file order)."""
    best: tuple[float, Transition] | None = None
    for transition in definition.timeouts(state):
        assert transition.timeout is not None
        due = entered_at + transition.timeout
        if best is None or due < best[0]:
            best = (due, transition)
    return best


def claimed_job_types(definition: MachineDefinition) -> frozenset[str] | None:
    """The job types the machine's queue checks can claim, or None when that cannot be
    narrowed (a check without a type, a type from a placeholder, or no check at all)."""
    default = definition.metadata.get("job_type")
    found: set[str] = set()
    for specs in definition.entry_actions.values():
        for spec in specs:
            if spec.type != "check_database_queue":
                continue
            job_type = spec.params.get("job_type", default)
            if not isinstance(job_type, str) or "{" in job_type:
                return None
            found.add(job_type)
    return frozenset(found) or None
