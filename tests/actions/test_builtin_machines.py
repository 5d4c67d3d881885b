"""check_machine_state and start_fsm (which spawns a real machine process and reaps it)."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from statemachine_engine.actions.builtin import machines
from statemachine_engine.errors import ActionError, ConfigError

TINY = """
name: tiny
initial_state: start
states: [start, done]
transitions:
  - {from: start, to: done, event: go}
actions:
  start:
    - type: log
      message: "hello {greeting} ({blob_size})"
      success: go
"""


def _register(store: Any, name: str, state: str, pid: int) -> None:
    store.register_machine(
        name,
        state,
        pid=pid,
        hostname=socket.gethostname(),
        config_path="g.yaml",
        definition_name="g",
        definition_hash="h",
        definition_text="",
        at=1.0,
    )


async def test_check_machine_state_outcomes(make_action, store, context):
    action = make_action(
        "type: check_machine_state\ntarget_machine: gen\nexpected_states: [ready, idle]"
    )
    assert await action.execute(context) == "not_running"
    _register(store, "gen", "ready", os.getpid())
    assert await action.execute(context) == "in_expected_state"
    _register(store, "gen", "busy", os.getpid())
    assert await action.execute(context) == "unexpected_state"
    assert context["unexpected_machine_state"] == "busy"
    store.machine_stopped("gen", "stopped", 2.0)
    assert await action.execute(context) == "not_running"


async def test_check_machine_state_renamed_events_and_single_state(make_action, store, context):
    action = make_action(
        """
        type: check_machine_state
        target_machine: gen
        expected_state: ready
        in_expected_state: ok
        unexpected_state: wrong
        not_running: down
        """
    )
    assert await action.execute(context) == "down"
    _register(store, "gen", "ready", os.getpid())
    assert await action.execute(context) == "ok"
    _register(store, "gen", "other", os.getpid())
    assert await action.execute(context) == "wrong"


async def test_a_dead_pid_is_not_running(make_action, store, context):
    proc = subprocess.Popen(["true"])
    proc.wait()
    _register(store, "gen", "ready", proc.pid)
    action = make_action("type: check_machine_state\ntarget_machine: gen")
    assert await action.execute(context) == "not_running"


@pytest.fixture
def spawn_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Log and runtime directories for spawned machines; returns the log directory."""
    logs = tmp_path / "logs"
    monkeypatch.setenv("STATEMACHINE_LOG_DIR", str(logs))
    with tempfile.TemporaryDirectory(prefix="sm-") as short:
        monkeypatch.setenv("STATEMACHINE_RUNTIME_DIR", short + "/rt")
        yield logs


async def test_start_fsm_spawns_a_machine_and_reaps_it(
    make_action, runtime, store, context, tmp_path, spawn_env, monkeypatch, until, caplog
):
    (tmp_path / "tiny.yaml").write_text(TINY)
    calls: list[tuple[list[str], dict[str, Any]]] = []
    real_popen = subprocess.Popen

    def recording_popen(argv: list[str], **kwargs: Any) -> Any:
        calls.append((argv, kwargs))
        return real_popen(argv, **kwargs)

    monkeypatch.setattr(machines.subprocess, "Popen", recording_popen)
    context["greeting"] = "world"
    context["blob"] = "b" * (300 * 1024)
    context["blob_size"] = len(context["blob"])
    action = make_action(
        """
        type: start_fsm
        yaml_path: tiny.yaml
        machine_name: tiny-1
        context_vars: [greeting, blob, blob_size]
        success: started
        """
    )
    caplog.set_level(logging.INFO, logger=machines.__name__)
    assert await action.execute(context) == "started"
    pid = context["started_pid"]
    assert context["started_machine"] == "tiny-1"
    [(argv, kwargs)] = calls
    assert runtime.db_url not in " ".join(argv)
    assert kwargs["env"]["STATEMACHINE_DB"] == runtime.db_url
    assert kwargs["start_new_session"] is True
    # The reaper thread reaps the child, then forgets it, then logs: wait for the last.
    await until(lambda: f"tiny-1 (pid {pid}) exited with code 0" in caplog.text, timeout=30)
    assert not Path(f"/proc/{pid}").exists()
    assert pid not in machines.running_children()
    log = (spawn_env / "tiny-1.log").read_text()
    assert f"hello world ({300 * 1024})" in log
    status = store.get_machine("tiny-1")
    assert status is not None and status.current_state == "done"


async def test_start_fsm_refuses_an_unsafe_machine_name(make_action, context, spawn_env):
    context["name"] = "../../evil"
    action = make_action(
        "type: start_fsm\nyaml_path: x.yaml\nmachine_name: '{name}'", keys=["name"]
    )
    with pytest.raises(ActionError, match="invalid machine name"):
        await action.execute(context)
    assert not spawn_env.exists() or not any(spawn_env.parent.rglob("evil*"))


async def test_start_fsm_needs_config_and_name(make_action, context):
    with pytest.raises(ConfigError, match="yaml_path"):
        make_action("type: start_fsm\nmachine_name: a")


async def test_start_fsm_context_vars_in_the_released_forms_and_store_pid(
    make_action, store, context, tmp_path, spawn_env, until
):
    (tmp_path / "tiny.yaml").write_text(TINY)
    context["current_job"] = {"job_id": "j7", "data": {"who": "nested", "size": 3}}
    action = make_action(
        """
        type: start_fsm
        yaml_path: tiny.yaml
        machine_name: tiny-2
        context_vars:
          - current_job.data.who as greeting
          - current_job.data.size as blob_size
          - current_job.data
          - missing.key
        store_pid: true
        success: started
        """,
        keys=["current_job"],
    )
    assert await action.execute(context) == "started"
    pid = context["started_pid"]
    assert context["spawned_pids"] == [pid]
    await until(lambda: not Path(f"/proc/{pid}").exists(), timeout=30)
    log = (spawn_env / "tiny-2.log").read_text()
    assert "hello nested (3)" in log, log


def test_context_vars_entries() -> None:
    context = {"a": {"b": {"c": 1}}, "x": 2}
    assert machines._extract(context, "x") == ("x", 2)
    assert machines._extract(context, "a.b.c") == ("c", 1)
    assert machines._extract(context, "a.b as here") == ("here", {"c": 1})
    assert machines._extract(context, "a.nope") is None
