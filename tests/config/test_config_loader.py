"""Tests for loading both YAML dialects into a validated MachineDefinition."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statemachine_engine.actions.params import Declaration
from statemachine_engine.config import load_definition, parse_definition
from statemachine_engine.config.model import MachineDefinition, Position
from statemachine_engine.errors import ConfigError


class FakeCatalog:
    """Built-in names with fixed provided keys; `mystery` is a custom action that cannot say."""

    PROVIDES: dict[str, frozenset[str] | None] = {
        "bash": frozenset({"output", "exit_code"}),
        "log": frozenset(),
        "check_database_queue": frozenset(),
        "check_events": frozenset(),
        "send_event": frozenset(),
        "set_context": frozenset(),
        "pop_from_list": frozenset(),
        "mystery": None,
    }

    def names(self) -> frozenset[str]:
        return frozenset(self.PROVIDES)

    def provides(self, action_type: str) -> frozenset[str] | None:
        return self.PROVIDES[action_type]

    def declaration(self, action_type: str) -> Declaration:
        return Declaration()


CATALOG = FakeCatalog()

TRANSITION_FORM = """\
name: "Simple Task Worker"
initial_state: initializing
metadata: {machine_name: worker, job_type: simple_task}
states: [initializing, waiting, processing, completed, stopped]
events: [initialized, new_job, no_jobs, job_done, stop]
transitions:
  - from: initializing
    to: waiting
    event: initialized
    actions:
      - type: bash
        params: {command: "mkdir -p data/output", success: initialized}
  - from: waiting
    to: processing
    event: new_job
    actions:
      - type: check_database_queue
        params: {job_type: simple_task}
  - {from: waiting, to: waiting, event: no_jobs}
  - from: processing
    to: completed
    event: job_done
    actions:
      - type: bash
        description: write the result
        params:
          command: "echo 'Processed {job_id}' > data/output/{job_id}.txt"
          success: job_done
  - from: "*"
    to: stopped
    event: stop
"""

STATE_FORM = """\
name: "Simple Task Worker"
initial_state: initializing
metadata:
  machine_name: worker
  job_type: simple_task
states:
  - initializing
  - waiting
  - processing
  - completed
  - stopped
events:
  - initialized
  - new_job
  - no_jobs
  - job_done
  - stop
transitions:
  - {from: initializing, to: waiting, event: initialized}
  - {from: waiting, to: processing, event: new_job}
  - {from: waiting, to: waiting, event: no_jobs}
  - {from: processing, to: completed, event: job_done}
  - {from: "*", to: stopped, event: stop}
actions:
  initializing:
    - type: bash
      command: "mkdir -p data/output"
      success: initialized
  waiting:
    - type: check_database_queue
      job_type: simple_task
  processing:
    - type: bash
      description: write the result
      command: "echo 'Processed {job_id}' > data/output/{job_id}.txt"
      success: job_done
"""


def parse(*parts: str, source: str = "worker.yaml", **kwargs: Any) -> MachineDefinition:
    """Parse the concatenation of `parts`, each dedented on its own."""
    text = "".join(textwrap.dedent(part) for part in parts)
    return parse_definition(text, source, CATALOG, **kwargs)


def error_of(*parts: str, **kwargs: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse(*parts, **kwargs)
    return info.value


def where(error: ConfigError) -> tuple[int | None, int | None]:
    return error.line, error.column


def without_pos(value: Any) -> Any:
    """Dataclasses (and tuples/dicts of them) with every Position replaced by None."""
    if isinstance(value, Position):
        return None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: without_pos(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return (type(value).__name__, tuple(sorted(fields.items(), key=lambda kv: kv[0])))
    if isinstance(value, tuple):
        return tuple(without_pos(v) for v in value)
    if isinstance(value, dict):
        return {k: without_pos(v) for k, v in value.items()}
    return value


MINIMAL = """\
initial_state: idle
states: [idle, busy]
events: [go, done]
transitions:
  - {from: idle, to: busy, event: go}
  - {from: busy, to: idle, event: done}
"""


def test_both_dialects_load_to_the_same_machine() -> None:
    a = parse(TRANSITION_FORM)
    b = parse(STATE_FORM)
    assert without_pos(a.transitions) == without_pos(b.transitions)
    assert without_pos(a.entry_actions) == without_pos(b.entry_actions)
    assert a.states == b.states
    assert set(a.events) == set(b.events)
    assert a.metadata == b.metadata == {"machine_name": "worker", "job_type": "simple_task"}
    processing = a.entry_actions["processing"][0]
    assert processing.description == "write the result"
    assert "description" not in processing.params
    assert a.entry_actions["completed"] == ()
    assert a.job_types == {"simple_task"}


def test_transition_actions_are_entry_actions_of_the_source_state() -> None:
    definition = parse(TRANSITION_FORM)
    initializing = definition.entry_actions["initializing"]
    assert [spec.type for spec in initializing] == ["bash"]
    assert initializing[0].params == {"command": "mkdir -p data/output", "success": "initialized"}
    assert initializing[0].pos == Position("worker.yaml", 11, 9)
    assert definition.entry_actions["waiting"][0].type == "check_database_queue"


def test_actions_map_runs_before_transition_actions() -> None:
    definition = parse(
        """\
        initial_state: a
        states: [a, b]
        transitions:
          - from: a
            to: b
            event: first
            actions: [{type: log, message: second}]
          - from: a
            to: b
            event: other
            actions: [{type: log, message: third}]
        actions:
          a: [{type: log, message: first}]
        """
    )
    messages = [spec.params["message"] for spec in definition.entry_actions["a"]]
    assert messages == ["first", "second", "third"]


def test_flat_and_params_forms_are_equal() -> None:
    flat = parse(MINIMAL + "actions:\n  idle: [{type: bash, command: ls, timeout: 5}]\n")
    nested = parse(
        MINIMAL + "actions:\n  idle: [{type: bash, params: {command: ls, timeout: 5}}]\n"
    )
    mixed = parse(MINIMAL + "actions:\n  idle: [{type: bash, command: ls, params: {timeout: 5}}]\n")
    expected = {"command": "ls", "timeout": 5}
    for definition in (flat, nested, mixed):
        assert definition.entry_actions["idle"][0].params == expected


def test_parameter_given_twice_is_an_error() -> None:
    error = error_of(
        MINIMAL + "actions:\n  idle: [{type: bash, command: ls, params: {command: pwd}}]\n"
    )
    assert where(error) == (8, 45)
    assert "both beside `type:` and under `params:`" in error.message


def test_released_package_keys_stay_in_params() -> None:
    definition = parse(
        MINIMAL,
        """\
        actions:
          idle:
            - type: check_database_queue
              job_type: t
              empty: nothing_to_do
              already_claimed: taken
              pending: waiting_more
              repeatable: true
              run_policy: repeat_per_tick
            - type: bash
              command: "false"
              timeout_event: too_slow
              error_mappings: {1: failed, 2: broken}
        """,
    )
    queue, bash = definition.entry_actions["idle"]
    assert queue.params["run_policy"] == "repeat_per_tick" and queue.params["repeatable"] is True
    assert bash.params["error_mappings"] == {1: "failed", 2: "broken"}
    assert "nothing_to_do" in definition.idle_events
    assert {"no_jobs", "no_events"} <= definition.idle_events


def test_on_off_yes_no_state_names() -> None:
    definition = parse(
        """\
        initial_state: off
        states: [off, on, yes, no]
        transitions:
          - {from: off, to: on, event: yes}
          - {from: on, to: no, event: no}
        """
    )
    assert definition.states == ("off", "on", "yes", "no")
    assert definition.transitions[0].event == "yes"
    assert definition.initial_state == "off"


def test_from_list_expands_and_wildcard_is_kept() -> None:
    definition = parse(
        """\
        initial_state: a
        states: [a, b, c]
        transitions:
          - from: [a, b]
            to: c
            event: go
            actions: [{type: log, message: hi}]
          - {from: "*", to: a, event: reset}
        """
    )
    assert [(t.source, t.target) for t in definition.transitions] == [
        ("a", "c"),
        ("b", "c"),
        ("*", "a"),
    ]
    assert len(definition.entry_actions["a"]) == len(definition.entry_actions["b"]) == 1
    assert definition.outgoing("c")[0].event == "reset"
    assert definition.is_final("c")


def test_timeout_events() -> None:
    definition = parse(MINIMAL + "  - {from: busy, to: idle, event: timeout(2.5)}\n")
    timeouts = definition.timeouts("busy")
    assert [t.timeout for t in timeouts] == [2.5]
    assert "timeout(2.5)" not in definition.events


@pytest.mark.parametrize(
    "event", ["timeout(x)", "timeout()", "timeout(-1)", "timeout(0)", "timeout (5)"]
)
def test_bad_timeouts(event: str) -> None:
    error = error_of(MINIMAL + f"  - {{from: busy, to: idle, event: '{event}'}}\n")
    assert where(error) == (7, 35)
    assert error.hint is not None and "timeout(30)" in error.hint


def test_events_are_derived_from_transitions_when_not_declared() -> None:
    definition = parse(
        """\
        initial_state: a
        states: [a, b]
        transitions:
          - {from: a, to: b, event: go}
          - {from: b, to: a, event: timeout(3)}
          - {from: b, to: a, event: go}
        """
    )
    assert list(definition.events) == ["go"]
    assert definition.events["go"].pos == Position("worker.yaml", 4, 29)


def test_states_are_derived_when_not_declared() -> None:
    definition = parse(
        """\
        initial_state: waiting
        transitions:
          - {from: waiting, to: analyzing, event: processing_done}
          - {from: analyzing, to: completed, event: analyzed}
        """
    )
    assert definition.states == ("waiting", "analyzing", "completed")
    assert definition.state_pos["analyzing"] == Position("worker.yaml", 3, 25)


def test_event_map_with_context_map() -> None:
    definition = parse(
        """\
        initial_state: a
        states: [a, b]
        events:
          go:
            context_map: {target_file: payload.file}
          back: null
          other: {}
        transitions:
          - {from: a, to: b, event: go}
          - {from: b, to: a, event: back}
        actions:
          b: [{type: bash, command: "cat {target_file}"}]
        """
    )
    assert definition.events["go"].context_map == {"target_file": "payload.file"}
    assert definition.events["back"].context_map == {}
    assert definition.events["go"].pos == Position("worker.yaml", 4, 3)


def test_name_metadata_template_context_and_options() -> None:
    definition = parse(
        MINIMAL,
        """\
        description: demo machine
        version: 2
        template: true
        context: {retries: 3, folder: out}
        options: {idle_events: [nothing_new]}
        """,
        source="dir/my_machine.yaml",
    )
    assert definition.name == "my_machine"
    assert definition.template is True
    assert definition.context_defaults == {"retries": 3, "folder": "out"}
    assert "nothing_new" in definition.idle_events
    assert definition.metadata == {"description": "demo machine", "version": 2}
    assert definition.source == "dir/my_machine.yaml"


def test_template_must_be_a_boolean() -> None:
    error = error_of(MINIMAL + "template: yes\n")
    assert where(error) == (7, 11)
    assert error.hint is not None and "plain strings" in error.hint


def test_first_class_groups() -> None:
    definition = parse(MINIMAL + "groups:\n  Rest: [idle]\n  Work: [busy]\n")
    assert definition.groups == {"Rest": ("idle",), "Work": ("busy",)}


def test_state_in_two_groups_is_an_error() -> None:
    error = error_of(MINIMAL + "groups:\n  A: [idle]\n  B: [busy, idle]\n")
    assert where(error) == (9, 13)
    assert "already in group 'A'" in error.message


def test_comment_groups_are_read_when_groups_are_absent() -> None:
    definition = parse(
        """\
        initial_state: idle
        states:
          # === IDLE ===
          - idle
          # === WORK ===
          - busy
          - done
        transitions:
          - {from: idle, to: busy, event: go}
          - {from: busy, to: done, event: finished}
        """
    )
    assert definition.groups == {"IDLE": ("idle",), "WORK": ("busy", "done")}


def test_state_positions() -> None:
    definition = parse(MINIMAL)
    assert definition.state_pos == {
        "idle": Position("worker.yaml", 2, 10),
        "busy": Position("worker.yaml", 2, 16),
    }


@pytest.mark.parametrize(
    ("text", "line", "column", "message", "hint"),
    [
        (
            MINIMAL.replace("to: busy", "to: bussy"),
            5,
            22,
            "transition to undeclared state 'bussy'",
            "did you mean 'busy'?",
        ),
        (
            MINIMAL.replace("{from: busy", "{from: buys"),
            6,
            12,
            "transition from undeclared state 'buys'",
            "did you mean 'busy'?",
        ),
        (
            MINIMAL.replace("event: done}", "event: don}"),
            6,
            35,
            "transition on undeclared event 'don'",
            "did you mean 'done'?",
        ),
        (
            MINIMAL.replace("initial_state: idle", "initial_state: idel"),
            1,
            16,
            "initial_state 'idel' is not a declared state",
            "did you mean 'idle'?",
        ),
        (
            MINIMAL.replace("initial_state: idle\n", ""),
            1,
            1,
            "missing `initial_state`",
            None,
        ),
        (
            "tranistions: []\n" + MINIMAL,
            1,
            1,
            "unknown top-level key 'tranistions'",
            "did you mean 'transitions'?",
        ),
        (MINIMAL.replace("[idle, busy]", "[idle, busy, idle]"), 2, 22, "declared twice", None),
        (
            MINIMAL + "actions:\n  bussy: [{type: log}]\n",
            8,
            3,
            "actions for undeclared state 'bussy'",
            "did you mean 'busy'?",
        ),
        (
            MINIMAL + "actions:\n  idle: [{type: bsh}]\n",
            8,
            17,
            "unknown action type 'bsh'",
            "did you mean 'bash'?",
        ),
        (
            MINIMAL + "groups:\n  Work: [busy, idel]\n",
            8,
            16,
            "group 'Work' lists undeclared state 'idel'",
            "did you mean 'idle'?",
        ),
        (
            MINIMAL + "  - {from: idle, to: '*', event: go}\n",
            7,
            22,
            "transition to undeclared state '*'",
            "'*' may only be used in `from:`",
        ),
        (
            MINIMAL + "  - {from: idle, to: busy, evnt: go}\n",
            7,
            28,
            "unknown transition key 'evnt'",
            "did you mean 'event'?",
        ),
    ],
)
def test_validation_errors_point_at_the_offending_node(
    text: str, line: int, column: int, message: str, hint: str | None
) -> None:
    error = error_of(text)
    assert (error.file, error.line, error.column) == ("worker.yaml", line, column)
    assert message in error.message
    if hint is not None:
        assert error.hint == hint


def test_error_message_is_one_line_with_file_line_column() -> None:
    error = error_of(MINIMAL.replace("to: busy", "to: bussy"))
    assert str(error) == (
        "worker.yaml:5:22: transition to undeclared state 'bussy' (did you mean 'busy'?)"
    )


def test_first_error_in_document_order_is_reported() -> None:
    text = MINIMAL.replace("to: idle", "to: idel").replace("events: [go, done]", "events: [go]")
    error = error_of("actions:\n  idle: [{type: nope}]\n" + text)
    assert where(error) == (2, 17)
    error = error_of(text)
    assert where(error) == (6, 22)
    assert "undeclared state 'idel'" in error.message


def test_wildcard_transition_actions_are_rejected() -> None:
    error = error_of(
        MINIMAL + "  - from: '*'\n    to: idle\n    event: go\n    actions: [{type: log}]\n"
    )
    assert where(error) == (10, 5)
    assert error.hint is not None and "'*' is not a state" in error.hint


@pytest.mark.parametrize("name", ["../evil", "os.system", "a.b", "Evil", "x" * 200, "1abc", ""])
def test_action_type_must_be_a_plain_identifier(name: str) -> None:
    error = error_of(MINIMAL + f"actions:\n  idle: [{{type: '{name}'}}]\n")
    assert where(error) == (8, 17)
    assert "invalid action type" in error.message
    assert len(str(error)) < 400


def test_action_without_type_and_non_mapping_actions() -> None:
    assert "no `type:`" in error_of(MINIMAL + "actions:\n  idle: [{command: ls}]\n").message
    error = error_of(MINIMAL + "actions:\n  idle: [bash]\n")
    assert error.hint == "write `- type: bash`"
    assert "must be a list" in error_of(MINIMAL + "actions:\n  idle: {type: log}\n").message


def test_placeholder_with_unknown_root_is_an_error() -> None:
    text = MINIMAL + 'actions:\n  busy:\n    - type: bash\n      command: "echo {jobid}"\n'
    error = error_of(text)
    assert where(error) == (10, 16)
    assert "unknown placeholder root 'jobid'" in error.message
    assert error.hint is not None and "job_id" in error.hint


def test_known_placeholder_roots_are_accepted() -> None:
    definition = parse(
        MINIMAL,
        """\
        context: {folder: out}
        actions:
          idle:
            - type: set_context
              key: counter
              value: 0
            - type: set_context
              values: {flag: true}
            - type: pop_from_list
              list_key: items
              store_as: item
          busy:
            - type: bash
              command: >-
                echo {id} {job_id} {data.x.y} {payload.p} {event.name} {current_job.data.x}
                {event_data.payload.z} {output} {counter} {flag} {item} {items} {folder}
                {from_cli} ${HOME} {{literal}} '{print $1}' {"json": 1}
        """,
        extra_context_keys={"from_cli"},
    )
    assert definition.entry_actions["busy"][0].type == "bash"


def test_placeholder_check_is_skipped_when_a_custom_action_cannot_say() -> None:
    text = MINIMAL + "actions:\n  idle: [{type: mystery}]\n  busy: [{type: log, message: '{x}'}]\n"
    assert parse(text).entry_actions["busy"][0].params == {"message": "{x}"}
    error = error_of(text.replace("type: mystery", "type: log"))
    assert "'x'" in error.message


def test_placeholders_in_nested_params_are_checked() -> None:
    text = (
        MINIMAL + "actions:\n  idle:\n    - type: send_event\n      payload: {a: [ok, '{nope}']}\n"
    )
    error = error_of(text)
    assert where(error) == (10, 25)


def test_load_definition_reads_file_digest_and_name(tmp_path: Path) -> None:
    path = tmp_path / "worker.yaml"
    path.write_text(STATE_FORM, encoding="utf-8")
    definition = load_definition(path, CATALOG)
    assert definition.digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert definition.text == STATE_FORM
    assert definition.source == str(path)
    assert definition.state_pos["waiting"] == Position(str(path), 8, 5)
    assert parse_definition(STATE_FORM, "x.yaml", CATALOG).digest == definition.digest


def test_load_definition_wraps_read_and_decode_errors(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(ConfigError, match="cannot read") as info:
        load_definition(missing, CATALOG)
    assert info.value.file == str(missing)
    with pytest.raises(ConfigError, match="cannot read"):
        load_definition(tmp_path, CATALOG)
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"initial_state: \xff\xfe\n")
    with pytest.raises(ConfigError, match="UTF-8"):
        load_definition(bad, CATALOG)


def test_load_definition_rejects_big_files(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"a: " + b"x" * (3 * 1024 * 1024))
    with pytest.raises(ConfigError, match="MiB"):
        load_definition(big, CATALOG)


def test_yaml_errors_surface_with_position(tmp_path: Path) -> None:
    error = error_of("initial_state: a\nstates:\n\t- a\n")
    assert where(error) == (3, 1)
    error = error_of("initial_state: a\ninitial_state: b\n")
    assert where(error) == (2, 1)


def assert_one_line(error: ConfigError) -> None:
    assert error.file == "fuzz.yaml"
    assert not any(ch in str(error) for ch in "\n\r\x85\u2028\u2029")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_random_text_raises_only_config_errors(text: str) -> None:
    try:
        parse_definition(text, "fuzz.yaml", CATALOG)
    except ConfigError as error:
        assert_one_line(error)


_names = st.sampled_from(
    ["a", "b", "on", "off", "yes", "*", "1", "", "timeout(1)", "x y", "a\nb", "{x}", "bash"]
)
_yamlish = st.recursive(
    st.none() | st.booleans() | st.integers() | _names,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "from",
                    "to",
                    "event",
                    "type",
                    "actions",
                    "states",
                    "params",
                    "command",
                    "context_map",
                ]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "initial_state": _names,
            "states": st.lists(_names, max_size=4),
            "events": _yamlish,
            "transitions": st.lists(_yamlish, max_size=3),
            "actions": _yamlish,
            "groups": _yamlish,
            "options": _yamlish,
            "context": _yamlish,
        },
    )
)
def test_random_structures_raise_only_config_errors(document: dict[str, Any]) -> None:
    try:
        parse_definition(json.dumps(document), "fuzz.yaml", CATALOG)
    except ConfigError as error:
        assert_one_line(error)
