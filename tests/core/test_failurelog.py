"""The one line a failed attempt is logged as (issue 16 item 7)."""

from __future__ import annotations

from statemachine_engine.core.failurelog import failure_summary, first_line
from statemachine_engine.database.records import ActionRun


def run(code: int | None, stderr: str = "") -> ActionRun:
    return ActionRun("J1", 1, "busy", "bash", 1.0, 2.0, "cmd", code, "", stderr)


def test_a_failed_command_gives_its_exit_code_and_first_line_of_stderr() -> None:
    text, fields = failure_summary("exit code 3: a\nb", [run(0), run(3, "\n  disk full \nmore\n")])
    assert text == "exit code 3: disk full [...]"
    assert fields == {"exit_code": 3}


def test_without_stderr_only_the_exit_code() -> None:
    assert failure_summary("exit code 9", [run(9)]) == ("exit code 9", {"exit_code": 9})


def test_without_a_failed_command_the_first_line_of_the_reason() -> None:
    text, fields = failure_summary("Traceback:\n  boom", [run(0), run(None)])
    assert (text, fields) == ("Traceback: [...]", {"exit_code": None})
    assert failure_summary(None, []) == ("error", {"exit_code": None})


def test_first_line_skips_blank_lines() -> None:
    assert first_line("\n\n one \n") == "one"
    assert first_line("  \n") == ""
