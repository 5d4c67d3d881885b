"""What `bash` keeps for the job history (issue 16 item 1): the command as run, its exit code
and the last 8 KiB of each stream, also when the output is far larger than what the context
keeps; and the DEBUG lines with the command and its output (item 7)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from statemachine_engine.actions.builtin.bash import OUTPUT_CAP
from statemachine_engine.core.pendingstep import TAIL_BYTES, CommandRun


def command_run(action: Any) -> CommandRun:
    run = action.runtime.pending.command
    assert isinstance(run, CommandRun)
    return run


async def test_the_command_as_run_and_its_output_are_kept(make_action, context):
    context["name"] = "it's me"
    action = make_action(
        "type: bash\ncommand: 'echo hi {name}; echo warn >&2; exit 3'", keys=("name",)
    )
    await action.execute(context)
    run = command_run(action)
    assert run.command == "echo hi 'it'\"'\"'s me'; echo warn >&2; exit 3"
    assert (run.exit_code, run.stdout_tail, run.stderr_tail) == (3, "hi it's me\n", "warn\n")


async def test_tails_are_the_last_8_kib_of_an_output_larger_than_the_context_keeps(
    make_action, context
):
    # 3 MiB on stdout (the context keeps the first MiB), then a last line; and on stderr a
    # multi-byte character cut by the 8 KiB boundary.
    action = make_action(
        "type: bash\n"
        "command: \"head -c 3145728 /dev/zero | tr '\\\\0' x; echo; echo LAST;"
        " python3 -c 'import sys; sys.stderr.write(chr(233) * 5000)'\"\n"
        "timeout: 20\n"
    )
    await action.execute(context)
    run = command_run(action)
    assert len(context["stdout"]) > OUTPUT_CAP  # the head, with its truncation marker
    assert run.stdout_tail.endswith("x\nLAST\n")
    assert len(run.stdout_tail.encode()) == TAIL_BYTES
    assert set(run.stdout_tail[: -len("\nLAST\n")]) == {"x"}
    assert set(run.stderr_tail) == {"é"}
    assert TAIL_BYTES - 1 <= len(run.stderr_tail.encode()) <= TAIL_BYTES


async def test_the_command_and_its_output_are_logged_at_debug(
    make_action, context, caplog: pytest.LogCaptureFixture
):
    action = make_action("type: bash\ncommand: 'echo out; echo err >&2'")
    with caplog.at_level(logging.DEBUG, logger="statemachine_engine.actions"):
        await action.execute(context)
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert any(m.endswith("bash runs: echo out; echo err >&2") for m in debug)
    assert any("bash exit code 0; stdout: 'out\\n'; stderr: 'err\\n'" in m for m in debug)
    assert not [r for r in caplog.records if r.levelno > logging.DEBUG]
