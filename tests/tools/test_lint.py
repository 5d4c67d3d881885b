"""Each lint rule with a config that triggers it and a fixed one that does not."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from statemachine_engine.tools.lint import CODES
from statemachine_engine.tools.validate import Report, validate

BASE = """\
name: t
initial_state: waiting
metadata: {machine_name: %(name)s}
"""


def write(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(BASE % {"name": name} + textwrap.dedent(body))
    return path


def check(tmp_path: Path, *bodies: tuple[str, str]) -> Report:
    return validate([write(tmp_path, name, body) for name, body in bodies])


def codes(report: Report) -> list[str]:
    return [f.code for f in report.findings]


CASES: dict[str, tuple[str, str]] = {
    "SM125": (
        """\
        states: [waiting, done]
        actions:
          waiting: [{type: clear_events, success: go}]
        transitions:
          - {from: waiting, to: done, event: go}
        """,
        """\
        states: [waiting, done]
        actions:
          waiting: [{type: clear_events, event_types: [stale], success: go}]
        transitions:
          - {from: waiting, to: done, event: go}
        """,
    ),
    "SM124": (
        """\
        states: [waiting, done]
        actions:
          waiting: [{type: log, message: "got {reslt}", success: go}]
        transitions:
          - {from: waiting, to: done, event: go}
        """,
        """\
        states: [waiting, done]
        context: {result: 0}
        actions:
          waiting: [{type: log, message: "got {result}", success: go}]
        transitions:
          - {from: waiting, to: done, event: go}
        """,
    ),
    "SM101": (
        """\
        states: [waiting, done, orphan]
        actions:
          waiting: [{type: log, message: hi, success: go}]
        transitions:
          - {from: waiting, to: done, event: go}
          - {from: orphan, to: done, event: go}
        """,
        """\
        states: [waiting, done, side]
        actions:
          waiting: [{type: log, message: hi, success: go}]
          side: [{type: log, message: hi, success: go}]
        transitions:
          - {from: waiting, to: side, event: go}
          - {from: side, to: done, event: go}
        """,
    ),
    "SM102": (
        """\
        states: [waiting, busy, done]
        actions:
          waiting: [{type: log, message: hi, success: go}]
          busy: [{type: log, message: hi}]
        transitions:
          - {from: waiting, to: busy, event: go}
          - {from: busy, to: done, event: go}
        """,
        """\
        states: [waiting, busy, done]
        actions:
          waiting: [{type: log, message: hi, success: go}]
          busy: [{type: bash, command: "true", success: finished}]
        transitions:
          - {from: waiting, to: busy, event: go}
          - {from: busy, to: done, event: finished}
          - {from: busy, to: done, event: error}
        """,
    ),
    "SM104": (
        """\
        states: [waiting, done]
        actions:
          waiting: [{type: log, message: hi, success: go}]
        transitions:
          - {from: waiting, to: done, event: go}
          - {from: waiting, to: waiting, event: go}
        """,
        """\
        states: [waiting, done]
        actions:
          waiting: [{type: log, message: hi, success: go}]
        transitions:
          - {from: waiting, to: done, event: go}
        """,
    ),
    "SM105": (
        """\
        states: [waiting, done]
        actions:
          waiting:
            - {type: bash, command: "true", success: go, error: broke}
        transitions:
          - {from: waiting, to: done, event: go}
        """,
        """\
        states: [waiting, done, failed]
        actions:
          waiting:
            - {type: bash, command: "true", success: go, error: broke}
        transitions:
          - {from: waiting, to: done, event: go}
          - {from: waiting, to: failed, event: broke}
        """,
    ),
    "SM106": (
        """\
        states: [waiting, done]
        actions:
          waiting: [{type: bash, command: "true"}]
        transitions:
          - {from: waiting, to: done, event: error}
        """,
        """\
        states: [waiting, done]
        actions:
          waiting: [{type: bash, command: "true", success: ok}]
        transitions:
          - {from: waiting, to: done, event: ok}
          - {from: waiting, to: done, event: error}
        """,
    ),
    "SM109": (
        """\
        states: [waiting, spawned, done]
        actions:
          waiting:
            - {type: start_fsm, yaml_path: w.yaml, machine_name: w}
            - {type: log, message: hi, success: go}
        transitions:
          - {from: waiting, to: done, event: go}
          - {from: waiting, to: done, event: error}
        """,
        """\
        states: [waiting, done]
        actions:
          waiting:
            - {type: start_fsm, yaml_path: w.yaml, machine_name: w, success: go}
        transitions:
          - {from: waiting, to: done, event: go}
          - {from: waiting, to: done, event: error}
        """,
    ),
    "SM110": (
        """\
        states: [waiting, done]
        actions:
          waiting:
            - {type: bash, command: "true", success: go}
            - {type: log, message: never}
        transitions:
          - {from: waiting, to: done, event: go}
        """,
        """\
        states: [waiting, done]
        actions:
          waiting:
            - {type: log, message: first}
            - {type: bash, command: "true", success: go}
        transitions:
          - {from: waiting, to: done, event: go}
        """,
    ),
    "SM114": (
        """\
        states: [waiting, a, b]
        actions:
          waiting: [{type: log, message: hi, success: begin}]
          a: [{type: set_context, key: n, value: 1, success: go}]
          b: [{type: log, message: back, success: back}]
        transitions:
          - {from: waiting, to: a, event: begin}
          - {from: a, to: b, event: go}
          - {from: b, to: a, event: back}
        """,
        """\
        states: [waiting, a, b]
        actions:
          waiting: [{type: log, message: hi, success: begin}]
          a: [{type: set_context, key: n, value: 1, success: go}]
          b: [{type: sleep, seconds: 1, success: back}]
        transitions:
          - {from: waiting, to: a, event: begin}
          - {from: a, to: b, event: go}
          - {from: b, to: a, event: back}
        """,
    ),
}


@pytest.mark.parametrize("code", sorted(CASES))
def test_rule_fires_on_bad_config_and_not_on_fixed(tmp_path: Path, code: str) -> None:
    bad, good = CASES[code]
    report = check(tmp_path, ("bad", bad))
    assert code in codes(report), [str(f) for f in report.findings]
    assert report.exit_code() == 1
    fixed = check(tmp_path, ("good", good))
    assert fixed.findings == (), [str(f) for f in fixed.findings]
    assert fixed.exit_code(strict=True) == 0


def test_findings_carry_position_code_severity_and_hint(tmp_path: Path) -> None:
    report = check(tmp_path, ("bad", CASES["SM101"][0]))
    (finding,) = report.findings
    assert (finding.line, finding.column) == (4, 25)
    assert finding.severity == "warning"
    assert finding.hint
    assert str(finding).startswith(f"{tmp_path / 'bad.yaml'}:4:25: warning SM101 state 'orphan'")


def test_never_fire_when_the_state_cannot_produce_the_event(tmp_path: Path) -> None:
    report = check(
        tmp_path,
        (
            "m",
            """\
            states: [waiting, busy, done]
            actions:
              waiting: [{type: check_database_queue, job_type: x}]
              busy: [{type: log, message: hi, success: finished}]
            transitions:
              - {from: waiting, to: busy, event: new_job}
              - {from: waiting, to: waiting, event: no_jobs}
              - {from: busy, to: done, event: finished}
              - {from: waiting, to: done, event: finished}
            """,
        ),
    )
    assert codes(report) == ["SM104"]
    assert "waiting --finished--> done never fires" in report.findings[0].message


SENDER = """\
states: [waiting, sent]
actions:
  waiting:
    - {type: send_event, target_machine: %s, event_type: ping, success: sent_it}
transitions:
  - {from: waiting, to: sent, event: sent_it}
"""
RECEIVER = """\
states: [waiting, pinged]
transitions:
  - {from: waiting, to: pinged, event: ping}
  - {from: waiting, to: pinged, event: pong}
"""


def test_sm103_event_nobody_produces_in_a_set(tmp_path: Path) -> None:
    report = check(tmp_path, ("sender", SENDER % "receiver"), ("receiver", RECEIVER))
    assert codes(report) == ["SM103"]
    assert "'pong'" in report.findings[0].message
    fixed = RECEIVER.replace("  - {from: waiting, to: pinged, event: pong}\n", "")
    clean = check(tmp_path, ("sender", SENDER % "receiver"), ("receiver", fixed))
    assert clean.findings == ()


def test_a_lone_config_may_receive_any_event_from_outside(tmp_path: Path) -> None:
    assert check(tmp_path, ("receiver", RECEIVER)).findings == ()


def test_sm108_send_event_to_unknown_machine(tmp_path: Path) -> None:
    receiver = RECEIVER.replace("  - {from: waiting, to: pinged, event: pong}\n", "")
    report = check(tmp_path, ("sender", SENDER % "reciever"), ("receiver", receiver))
    assert "SM108" in codes(report)
    finding = next(f for f in report.findings if f.code == "SM108")
    assert finding.hint == "did you mean 'receiver'?"
    assert check(tmp_path, ("sender", SENDER % "receiver"), ("receiver", receiver)).findings == ()


def test_wildcard_events_count_as_sent_from_outside(tmp_path: Path) -> None:
    body = RECEIVER.replace("pong}", "pong}\n  - {from: '*', to: waiting, event: reset}")
    body = body.replace("  - {from: waiting, to: pinged, event: pong}\n", "")
    report = check(tmp_path, ("sender", SENDER % "receiver"), ("receiver", body))
    assert report.findings == ()


CUSTOM = """\
from statemachine_engine.actions.base import BaseAction


class MysteryAction(BaseAction):
    async def execute(self, context):
        context["answer"] = 42
        return "found"
"""


def test_sm107_placeholder_roots_unchecked_because_of_a_custom_action(tmp_path: Path) -> None:
    (tmp_path / "actions").mkdir()
    (tmp_path / "actions" / "mystery_action.py").write_text(CUSTOM)
    body = """\
    states: [waiting, done]
    actions:
      waiting:
        - {type: mystery}
        - {type: log, message: "{answr}", success: go}
    transitions:
      - {from: waiting, to: done, event: found}
      - {from: waiting, to: done, event: go}
    """
    report = check(tmp_path, ("custom", body))
    assert codes(report) == ["SM107"]
    assert report.findings[0].severity == "info"
    assert report.exit_code() == 0
    assert report.exit_code(strict=True) == 1
    fixed = check(
        tmp_path,
        (
            "custom",
            body.replace("answr", "answer").replace(
                "waiting, done]", "waiting, done]\n    context: {answer: 0}"
            ),
        ),
    )
    assert fixed.findings == ()


def test_no_false_positive_on_context_keys_from_actions_and_events(tmp_path: Path) -> None:
    body = """\
    states: [waiting, done]
    events:
      go: {context_map: {order: payload.order}}
      next: {}
    actions:
      waiting:
        - {type: set_context, values: {greeting: hi}}
        - {type: bash, command: "echo {greeting} {order}", success: next}
      done:
        - {type: log, message: "{output} {stdout} {exit_code} {greeting} {order}"}
    transitions:
      - {from: waiting, to: done, event: next}
      - {from: waiting, to: done, event: go}
    """
    report = check(tmp_path, ("ctx", body))
    assert report.findings == ()


def test_load_errors_are_all_reported_as_sm001_and_exit_2(tmp_path: Path) -> None:
    body = """\
    states: [waiting, done]
    transitions:
      - {from: waiting, to: doen, event: go}
      - {from: wating, to: done, event: go}
    """
    report = check(tmp_path, ("broken", body))
    assert codes(report) == ["SM001", "SM001"]
    assert report.findings[0].hint == "did you mean 'done'?"
    assert report.exit_code() == 2


def test_noqa_comment_silences_one_code(tmp_path: Path) -> None:
    bad = CASES["SM101"][0].replace("orphan]", "orphan]  # noqa: SM101")
    assert check(tmp_path, ("bad", bad)).findings == ()


def test_initial_actions_skipped_by_start_at_boot_are_sm110(tmp_path: Path) -> None:
    body = """\
    states: [waiting, done]
    actions:
      waiting: [{type: log, message: never runs}]
    transitions:
      - {from: waiting, to: done, event: start}
    """
    findings = check(tmp_path, ("boot", body)).findings
    assert [(f.code, f.line) for f in findings] == [("SM110", 6)], [str(f) for f in findings]
    assert "fires when the machine boots" in findings[0].message


def test_every_code_is_documented() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "tools.md").read_text()
    headings = [line for line in docs.splitlines() if line.startswith("### SM")]
    for code in CODES:
        assert any(code in heading for heading in headings), code


def test_bash_then_wait_for_an_outside_event_is_not_sm106(tmp_path: Path) -> None:
    body = """\
    states: [waiting, done]
    actions:
      waiting: [{type: bash, command: "echo ready"}]
    transitions:
      - {from: waiting, to: done, event: reply}
      - {from: waiting, to: done, event: error}
    """
    assert check(tmp_path, ("m", body)).findings == ()


def test_sm115_a_bounded_instant_loop_is_info(tmp_path: Path) -> None:
    report = check(
        tmp_path,
        (
            "drain",
            """\
            states: [waiting, popping, done]
            context: {items: [1, 2, 3]}
            actions:
              waiting: [{type: log, message: hi, success: begin}]
              popping:
                - {type: pop_from_list, list_key: items, success: popped, empty: drained}
            transitions:
              - {from: waiting, to: popping, event: begin}
              - {from: popping, to: popping, event: popped}
              - {from: popping, to: done, event: drained}
            """,
        ),
    )
    assert codes(report) == ["SM115"], [str(f) for f in report.findings]
    assert report.exit_code() == 0
    assert report.exit_code(strict=True) == 1


@pytest.mark.parametrize(
    ("action", "code", "message", "column"),
    [
        ('{type: bash, commnd: "true"}', "SM112", "unknown parameter 'commnd' for bash", 20),
        ('{type: bash, commnd: "true"}', "SM111", "bash requires parameter 'command'", 7),
        ("{type: sleep, seconds: soon}", "SM113", "'seconds' of sleep must be a number", 30),
        ("{type: log, message: hi, success: [a]}", "SM113", "`success:` of log", 41),
        ("{type: claim_job}", "SM111", "claim_job requires parameter 'job_id'", 7),
        ("{type: send_event, event: x}", "SM111", "requires `target_machine` or `target`", 7),
    ],
)
def test_action_parameters_are_checked_at_load(
    tmp_path: Path, action: str, code: str, message: str, column: int
) -> None:
    body = f"""\
        states: [waiting, done]
        actions:
          waiting:
            - {action}
        transitions:
          - {{from: waiting, to: done, event: go}}
        """
    report = check(tmp_path, ("bad", body))
    found = [f for f in report.findings if f.code == code]
    assert found, [str(f) for f in report.findings]
    assert message in found[0].message
    assert (found[0].line, found[0].column) == (7, column)
    assert found[0].severity == "error"
    assert report.exit_code() == 2


def test_unknown_parameter_hint_lists_what_the_action_takes(tmp_path: Path) -> None:
    body = """\
        states: [waiting, done]
        actions:
          waiting:
            - {type: log, text: hi}
        transitions:
          - {from: waiting, to: done, event: go}
        """
    (finding,) = [f for f in check(tmp_path, ("bad", body)).findings if f.code == "SM112"]
    assert finding.hint is not None and "message" in finding.hint


DWELL = """\
states: [waiting, done]
options: {max_dwell: {waiting: 60}%(stuck_event)s}
actions:
  waiting: [{type: sleep, seconds: 1, success: go}]
transitions:
  - {from: waiting, to: done, event: go}
%(more)s"""


def test_sm126_alert_only_dwell_is_info(tmp_path: Path) -> None:
    report = check(tmp_path, ("bad", DWELL % {"stuck_event": "", "more": ""}))
    assert [(f.code, f.severity) for f in report.findings] == [("SM126", "info")]
    assert report.exit_code() == 0 and report.exit_code(strict=True) == 1
    (finding,) = report.findings
    assert "'waiting' has max_dwell 60 s but no transition on 'stuck'" in finding.message
    assert (finding.line, finding.column) == (4, 10)  # the state in `states:`


@pytest.mark.parametrize(
    ("stuck_event", "more"),
    [
        ("", "  - {from: waiting, to: done, event: stuck}\n"),
        ("", "  - {from: waiting, to: done, event: timeout(5)}\n"),
        (", stuck_event: late", "  - {from: waiting, to: done, event: late}\n"),
    ],
)
def test_a_stuck_transition_or_a_timer_silences_sm126(
    tmp_path: Path, stuck_event: str, more: str
) -> None:
    """The stuck event counts as produced in a max_dwell state: no SM102/SM103/SM104."""
    report = check(tmp_path, ("good", DWELL % {"stuck_event": stuck_event, "more": more}))
    assert report.findings == (), [str(f) for f in report.findings]


def test_in_a_system_the_stuck_event_counts_as_produced_by_the_dwell_limit(
    tmp_path: Path,
) -> None:
    dweller = DWELL % {"stuck_event": "", "more": "  - {from: waiting, to: done, event: stuck}\n"}
    other = (
        "states: [waiting, done]\ntransitions:\n  - {from: waiting, to: done, event: timeout(1)}\n"
    )
    report = check(tmp_path, ("dweller", dweller), ("other", other))
    assert report.findings == (), [str(f) for f in report.findings]
