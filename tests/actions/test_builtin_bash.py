"""The `bash` action: outcomes, captured output, timeouts and process groups, big and hostile
values, environment."""

from __future__ import annotations

import asyncio
import hashlib
import time
from pathlib import Path
from typing import Any

import pytest

from statemachine_engine.actions.base import Failure
from statemachine_engine.actions.builtin.bash import OUTPUT_CAP, TRUNCATED
from statemachine_engine.errors import ActionError


async def test_success_captures_stdout_stderr_and_exit_code(make_action, context):
    action = make_action("type: bash\ncommand: 'echo hello; echo oops >&2'")
    assert await action.execute(context) == "job_done"
    assert context["stdout"] == "hello\n"
    assert context["stderr"] == "oops\n"
    assert context["exit_code"] == 0
    assert context["output"] == "hello"


async def test_custom_success_event(make_action, context):
    action = make_action("type: bash\ncommand: 'true'\nsuccess: done")
    assert await action.execute(context) == "done"


async def test_failure_returns_error_with_details(make_action, context):
    action = make_action("type: bash\ncommand: 'echo partial; echo broken >&2; exit 3'")
    result = await action.execute(context)
    assert result == "error"
    assert isinstance(result, Failure) and result.reason == "exit code 3: broken"
    assert context["exit_code"] == 3
    assert context["stdout"] == "partial\n"
    assert context["last_error"] == "exit code 3: broken"
    assert context["last_error_exit_code"] == 3
    assert context["last_error_action"] == "bash"


async def test_failure_without_stderr_names_the_exit_code(make_action, context):
    action = make_action("type: bash\ncommand: 'exit 9'\nerror: broke")
    assert await action.execute(context) == "broke"
    assert context["last_error"] == "exit code 9"


@pytest.mark.parametrize(("code", "event"), [(3, "three"), (4, "four"), (5, "error")])
async def test_error_mappings_with_int_and_string_keys(make_action, context, code, event):
    action = make_action(
        f"""
        type: bash
        command: 'exit {code}'
        error_mappings: {{3: three, "4": four}}
        """
    )
    assert await action.execute(context) == event


async def test_missing_command_is_an_error(make_action, context):
    action = make_action("type: bash\ncommand: '  '")
    with pytest.raises(ActionError, match="command"):
        await action.execute(context)


async def test_timeout_kills_the_process_group(make_action, context, tmp_path, alive, until):
    pid_file = tmp_path / "child.pid"
    action = make_action(
        f"""
        type: bash
        command: 'sleep 100 & echo $! > {pid_file}; wait'
        timeout: 0.5
        timeout_event: too_slow
        """
    )
    assert await action.execute(context) == "too_slow"
    assert "timed out after 0.5s" in context["last_error"]
    child = int(pid_file.read_text())
    await until(lambda: not alive(child))


async def test_timeout_defaults_to_the_error_event(make_action, context):
    action = make_action("type: bash\ncommand: 'sleep 100'\ntimeout: 0.2\nerror: failed_step")
    assert await action.execute(context) == "failed_step"


async def test_background_child_left_behind_is_killed_at_exit(
    make_action, context, tmp_path, alive, until
):
    pid_file = tmp_path / "child.pid"
    action = make_action(f"type: bash\ncommand: 'sleep 100 & echo $! > {pid_file}; echo started'")
    started = time.monotonic()
    assert await action.execute(context) == "job_done"
    assert time.monotonic() - started < 20
    assert context["stdout"] == "started\n"
    await until(lambda: not alive(int(pid_file.read_text())))


async def test_endless_output_is_killed_at_timeout_and_capped(make_action, context):
    action = make_action("type: bash\ncommand: 'yes'\ntimeout: 2")
    started = time.monotonic()
    assert await action.execute(context) == "error"
    assert time.monotonic() - started < 20
    assert context["stdout"].endswith(TRUNCATED)
    assert len(context["stdout"]) == OUTPUT_CAP + len(TRUNCATED)


async def test_huge_output_does_not_deadlock_and_is_truncated(make_action, context):
    action = make_action(
        "type: bash\ncommand: \"head -c 52428800 /dev/zero | tr '\\\\0' a\"\ntimeout: 20"
    )
    assert await action.execute(context) == "job_done"
    assert context["stdout"] == "a" * OUTPUT_CAP + TRUNCATED


async def test_cancellation_kills_the_process_group(make_action, context, tmp_path, alive, until):
    pid_file = tmp_path / "pids"
    action = make_action(
        f"type: bash\ncommand: 'sleep 100 & echo $$ $! > {pid_file}; wait'\ntimeout: 60"
    )
    task = asyncio.ensure_future(action.execute(context))
    await until(lambda: pid_file.exists() and len(pid_file.read_text().split()) == 2)
    shell, child = (int(p) for p in pid_file.read_text().split())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await until(lambda: not alive(shell) and not alive(child))


async def test_cancellation_while_starting_kills_the_process_group(
    make_action, context, tmp_path, alive, until
):
    pid_file = tmp_path / "pids"
    action = make_action(
        f"type: bash\ncommand: 'sleep 100 & echo $$ $! > {pid_file}; wait'\ntimeout: 60"
    )
    task = asyncio.ensure_future(action.execute(context))
    deadline = time.monotonic() + 5
    while not (pid_file.exists() and len(pid_file.read_text().split()) == 2):
        assert time.monotonic() < deadline
        await asyncio.sleep(0)
        time.sleep(0.001)  # hold the loop so the cancel lands while asyncio connects the pipes
    task.cancel()
    started = time.monotonic()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 10
    shell, child = (int(p) for p in pid_file.read_text().split())
    await until(lambda: not alive(shell) and not alive(child))


async def test_stdin_passes_a_large_value_intact(make_action, context):
    value = ("0123456789abcdef" * 65536)[: 1024 * 1024 - 3] + "é\n"
    context["big"] = value
    action = make_action("type: bash\ncommand: cat\nstdin: '{big}'", keys=["big"])
    assert await action.execute(context) == "job_done"
    assert context["stdout"] == value
    action = make_action("type: bash\ncommand: sha256sum\nstdin: '{big}'", keys=["big"])
    assert await action.execute(context) == "job_done"
    assert context["stdout"].split()[0] == hashlib.sha256(value.encode()).hexdigest()


async def test_value_too_big_for_the_command_line_names_the_placeholder(make_action, context):
    context["payload_text"] = "x" * (200 * 1024)
    action = make_action("type: bash\ncommand: 'printf %s {payload_text}'", keys=["payload_text"])
    with pytest.raises(ActionError, match=r"\{payload_text\}.*stdin"):
        await action.execute(context)


async def test_nul_in_a_value_is_an_error(make_action, context):
    context["x"] = "a\x00b"
    action = make_action("type: bash\ncommand: 'printf %s {x}'", keys=["x"])
    with pytest.raises(ActionError, match=r"\{x\}.*NUL"):
        await action.execute(context)


HOSTILE = [
    "$(touch {marker})",
    "`touch {marker}`",
    "'; touch {marker}; echo '",
    '"; touch {marker}; echo "',
    "a; touch {marker}",
    "a | touch {marker}",
    "a && touch {marker}",
    "line1\ntouch {marker}\nline3",
    "-rf",
    "*",
    "~",
    "$HOME ${HOME} $$",
    "back\\slash\\",
    'it\'s "quoted"',
    "\u202eRTL \u05e9\u05dc\u05d5\u05dd",
    "",
]


@pytest.mark.parametrize("template", ["{x}", "'{x}'", '"{x}"'])
@pytest.mark.parametrize("hostile", HOSTILE)
async def test_hostile_values_print_exactly_and_run_nothing(
    make_action, context, tmp_path, template, hostile
):
    marker = tmp_path / "marker"
    (tmp_path / "some_file").write_text("")
    value = hostile.replace("{marker}", str(marker))
    context["x"] = value
    command = "printf %s " + template
    action = make_action(
        f"type: bash\ncommand: {_yaml_str(command)}\ncwd: {_yaml_str(str(tmp_path))}",
        keys=["x"],
    )
    assert await action.execute(context) == "job_done"
    assert context["stdout"] == value
    assert not marker.exists()


def _yaml_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


async def test_environment_has_step_identity_and_no_secrets(make_action, context, monkeypatch):
    monkeypatch.setenv("STATEMACHINE_UI_TOKEN", "ui-tok-Qz7")
    monkeypatch.setenv("STATEMACHINE_DB", "postgresql://u:pw-Qz8@db/x")
    context["current_job"] = {"id": "job-42"}
    action = make_action("type: bash\ncommand: env")
    assert await action.execute(context) == "job_done"
    env = _env_lines(context["stdout"])
    assert env["STATEMACHINE_STEP_KEY"] == "worker:7"
    assert env["STATEMACHINE_MACHINE"] == "worker"
    assert env["STATEMACHINE_JOB_ID"] == "job-42"
    assert "STATEMACHINE_UI_TOKEN" not in env
    assert "STATEMACHINE_DB" not in env
    assert "Qz7" not in context["stdout"]
    assert "Qz8" not in context["stdout"]


async def test_a_secret_is_passed_only_when_listed(make_action, context, monkeypatch):
    monkeypatch.setenv("STATEMACHINE_DB", "sqlite:///x.db")
    action = make_action("type: bash\ncommand: env\npass_env: [STATEMACHINE_DB]")
    await action.execute(context)
    assert _env_lines(context["stdout"])["STATEMACHINE_DB"] == "sqlite:///x.db"


def _env_lines(text: str) -> dict[str, Any]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


async def test_env_parameter_is_rendered(make_action, context):
    context["who"] = "world $(touch x)"
    action = make_action(
        'type: bash\ncommand: \'printf %s "$GREETING"\'\nenv: {GREETING: "hello {who}"}',
        keys=["who"],
    )
    assert await action.execute(context) == "job_done"
    assert context["stdout"] == "hello world $(touch x)"


async def test_env_value_too_big_is_an_error_naming_it(make_action, context):
    context["big"] = "y" * (130 * 1024)
    action = make_action("type: bash\ncommand: 'true'\nenv: {BIG: '{big}'}", keys=["big"])
    with pytest.raises(ActionError, match="BIG"):
        await action.execute(context)


async def test_cwd_parameter(make_action, context, tmp_path):
    action = make_action(f"type: bash\ncommand: pwd\ncwd: {_yaml_str(str(tmp_path))}")
    assert await action.execute(context) == "job_done"
    assert Path(context["output"]) == tmp_path


async def test_missing_cwd_is_an_error(make_action, context, tmp_path):
    action = make_action(f"type: bash\ncommand: pwd\ncwd: {_yaml_str(str(tmp_path / 'nope'))}")
    with pytest.raises(ActionError, match="not a directory"):
        await action.execute(context)
