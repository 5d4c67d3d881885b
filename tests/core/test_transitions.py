"""The pure transition function: no loop, no database, no sockets."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from statemachine_engine.config.loader import parse_definition
from statemachine_engine.config.model import (
    DEFAULT_IDLE_EVENTS,
    WILDCARD,
    ActionSpec,
    MachineDefinition,
    Position,
    Transition,
)
from statemachine_engine.core import ActionLoader
from statemachine_engine.core.transitions import (
    claimed_job_types,
    decide,
    is_idle,
    next_timeout,
)

HERE = Position("t.yaml", 1, 1)


def definition(
    transitions: list[tuple[str, str, str]],
    *,
    states: tuple[str, ...] = ("a", "b", "c"),
    actions: dict[str, tuple[ActionSpec, ...]] | None = None,
    metadata: dict[str, object] | None = None,
) -> MachineDefinition:
    """A definition built directly from (source, target, event) triples."""
    built = []
    for source, target, event in transitions:
        seconds = float(event[8:-1]) if event.startswith("timeout(") else None
        built.append(Transition(source, target, event, HERE, seconds))
    return MachineDefinition(
        name="t",
        initial_state=states[0],
        states=states,
        events={},
        transitions=tuple(built),
        entry_actions=actions or {},
        source="t.yaml",
        digest="0",
        metadata=metadata or {},
    )


def queue_check(**params: object) -> ActionSpec:
    return ActionSpec("check_database_queue", params, HERE)


def test_own_transition_wins_over_an_earlier_wildcard() -> None:
    machine = definition([("*", "c", "go"), ("a", "b", "go")])
    chosen = decide(machine, "a", "go")
    assert chosen is not None and (chosen.source, chosen.target) == ("a", "b")


def test_wildcard_applies_when_the_state_has_none() -> None:
    machine = definition([("*", "c", "go"), ("a", "b", "go")])
    chosen = decide(machine, "b", "go")
    assert chosen is not None and (chosen.source, chosen.target) == ("*", "c")


def test_first_matching_transition_in_file_order() -> None:
    machine = definition([("a", "b", "go"), ("a", "c", "go"), ("*", "a", "go"), ("*", "b", "go")])
    first = decide(machine, "a", "go")
    assert first is not None and first.target == "b"
    wild = decide(machine, "c", "go")
    assert wild is not None and (wild.source, wild.target) == ("*", "a")


def test_unknown_event_or_state_decides_nothing() -> None:
    machine = definition([("a", "b", "go")])
    assert decide(machine, "a", "stop") is None
    assert decide(machine, "b", "go") is None
    assert decide(machine, "nowhere", "go") is None


def test_is_idle_only_for_self_transitions_on_idle_events() -> None:
    machine = definition(
        [("a", "a", "no_jobs"), ("a", "b", "no_jobs"), ("a", "a", "tick"), ("*", "a", "no_events")]
    )
    self_idle, moving, self_busy, wild = machine.transitions
    assert {"no_jobs", "no_events"} == DEFAULT_IDLE_EVENTS
    assert is_idle(machine, self_idle, "a")
    assert not is_idle(machine, moving, "a")
    assert not is_idle(machine, self_busy, "a")
    assert is_idle(machine, wild, "a")
    assert not is_idle(machine, wild, "b")


def test_idle_events_from_options_and_empty_keys() -> None:
    text = """
name: idle
initial_state: a
options: {idle_events: [nothing_new]}
transitions:
  - from: a
    to: a
    event: nothing_new
    actions:
      - {type: check_database_queue, job_type: t, empty: queue_dry}
  - {from: a, to: a, event: queue_dry}
  - {from: a, to: b, event: new_job}
"""
    machine = parse_definition(text, "idle.yaml", ActionLoader())
    for event in ("nothing_new", "queue_dry"):
        chosen = decide(machine, "a", event)
        assert chosen is not None and is_idle(machine, chosen, "a")


def test_next_timeout_is_the_earliest_of_own_and_wildcard_timers() -> None:
    machine = definition(
        [("a", "b", "timeout(30)"), ("*", "c", "timeout(10)"), ("a", "c", "timeout(20)")]
    )
    due = next_timeout(machine, "a", 1000.0)
    assert due is not None
    assert due[0] == 1010.0 and due[1].source == WILDCARD
    only_wild = next_timeout(machine, "b", 5.0)
    assert only_wild is not None and only_wild[0] == 15.0


def test_next_timeout_ties_go_to_file_order_and_none_without_timers() -> None:
    machine = definition([("a", "b", "timeout(5)"), ("a", "c", "timeout(5)"), ("b", "a", "go")])
    due = next_timeout(machine, "a", 0.0)
    assert due is not None and due[1].target == "b"
    assert next_timeout(machine, "b", 0.0) is None


def test_claimed_job_types_narrow_doorbells_only_when_known() -> None:
    explicit = definition([], actions={"a": (queue_check(job_type="x"),), "b": ()})
    assert claimed_job_types(explicit) == {"x"}
    from_metadata = definition([], actions={"a": (queue_check(),)}, metadata={"job_type": "m"})
    assert claimed_job_types(from_metadata) == {"m"}
    mixed = definition([], actions={"a": (queue_check(job_type="x"), queue_check())})
    assert claimed_job_types(mixed) is None
    templated = definition([], actions={"a": (queue_check(job_type="{kind}"),)})
    assert claimed_job_types(templated) is None
    assert claimed_job_types(definition([])) is None


STATES = ("a", "b", "c")
EVENTS = ("go", "stop", "no_jobs")
triples = st.tuples(
    st.sampled_from((*STATES, WILDCARD)), st.sampled_from(STATES), st.sampled_from(EVENTS)
)


@given(
    transitions=st.lists(triples, max_size=8),
    state=st.sampled_from(STATES),
    event=st.sampled_from((*EVENTS, "unknown")),
)
def test_decide_matches_a_brute_force_search(
    transitions: list[tuple[str, str, str]], state: str, event: str
) -> None:
    machine = definition(transitions)
    chosen = decide(machine, state, event)
    own = [t for t in machine.transitions if t.source == state and t.event == event]
    wild = [t for t in machine.transitions if t.source == WILDCARD and t.event == event]
    assert (chosen is None) == (not own and not wild)
    if chosen is not None:
        assert chosen.event == event
        assert chosen.source in (state, WILDCARD)
        assert chosen is (own or wild)[0]
