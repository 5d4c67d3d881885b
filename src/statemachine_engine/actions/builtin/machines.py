"""Actions about other machines: check where one is, start a new one."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, ClassVar

from statemachine_engine.actions.base import BaseAction
from statemachine_engine.errors import ActionError, StateMachineError

logger = logging.getLogger(__name__)

_children: dict[int, subprocess.Popen[bytes]] = {}
_children_lock = threading.Lock()


def running_children() -> list[int]:
    """Pids of machines started by this process that have not exited yet."""
    with _children_lock:
        return sorted(_children)


def _reap(proc: subprocess.Popen[bytes], name: str, stdin: bytes | None) -> None:
    """Hand the child its initial context, then wait for it, so it never stays a zombie."""
    if proc.stdin is not None:
        with contextlib.suppress(OSError):
            proc.stdin.write(stdin or b"")
        with contextlib.suppress(OSError):
            proc.stdin.close()
    code = proc.wait()
    with _children_lock:
        _children.pop(proc.pid, None)
    logger.info("started machine %s (pid %d) exited with code %d", name, proc.pid, code)


def _alive(pid: int | None, hostname: str | None) -> bool:
    if pid is None:
        return False
    if hostname is not None and hostname != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class CheckMachineStateAction(BaseAction):
    """Is `target_machine` running and in one of `expected_states` (or `expected_state`)?
    Returns `in_expected_state`, `unexpected_state` (the state lands in context
    `unexpected_machine_state`) or `not_running`, each renamable by the key of that name."""

    provides: ClassVar[frozenset[str] | None] = frozenset({"unexpected_machine_state"})

    async def execute(self, context: dict[str, Any]) -> str | None:
        target = str(self.param("target_machine", context))
        key = "expected_states" if "expected_states" in self.config else "expected_state"
        expected = self.param(key, context, None) or []
        states = {expected} if isinstance(expected, str) else {str(s) for s in expected}
        status = self.runtime.store.get_machine(target)
        if status is None or status.status != "running" or not _alive(status.pid, status.hostname):
            return self.event("not_running", "not_running")
        if not states or status.current_state in states:
            return self.event("in_expected_state", "in_expected_state")
        context["unexpected_machine_state"] = status.current_state
        return self.event("unexpected_state", "unexpected_state")


class StartFsmAction(BaseAction):
    """Spawn another machine process: `yaml_path` (or `config`), `machine_name`, optional
    `context_vars` (context keys to pass on), `initial_context` and `additional_args`.

    The child gets the database URL through its environment and the initial context on its
    stdin (never on the command line), runs in its own session, logs to
    `$STATEMACHINE_LOG_DIR/<machine_name>.log` (default data/logs) and is reaped by a
    waiter thread when it exits. Context: `started_pid`, `started_machine`.
    """

    provides: ClassVar[frozenset[str] | None] = frozenset({"started_pid", "started_machine"})

    async def execute(self, context: dict[str, Any]) -> str | None:
        from statemachine_engine.transport.runtime_dir import validate_machine_name

        runtime = self.runtime
        key = "yaml_path" if "yaml_path" in self.config else "config"
        config = self.param(key, context, None)
        name = self.param("machine_name", context, None)
        if not config or not name:
            raise ActionError("start_fsm: 'yaml_path' and 'machine_name' are required")
        name = str(name)
        try:
            validate_machine_name(name)
        except StateMachineError as exc:
            raise ActionError(f"start_fsm: {exc}") from None
        config_path = Path(str(config))
        if not config_path.is_absolute() and not config_path.exists():
            config_path = runtime.config_path.parent / config_path
        initial = self.param("initial_context", context, None) or {}
        if not isinstance(initial, dict):
            raise ActionError("start_fsm: 'initial_context' must be a mapping")
        initial = dict(initial)
        for var in self.config.get("context_vars") or ():
            if var in context:
                initial[str(var)] = context[var]
        argv = [
            sys.executable,
            "-m",
            "statemachine_engine.cli.run",
            str(config_path),
            "--machine-name",
            name,
        ]
        for directory in runtime.actions_dirs:
            argv += ["--actions-dir", str(directory)]
        stdin = json.dumps(initial, default=str).encode() if initial else None
        if stdin is not None:
            argv += ["--initial-context", "@-"]
        argv += [str(a) for a in self.config.get("additional_args") or ()]
        env = dict(os.environ, STATEMACHINE_DB=runtime.db_url)
        log_dir = Path(os.environ.get("STATEMACHINE_LOG_DIR", "data/logs"))
        log_dir.mkdir(parents=True, exist_ok=True)
        with open(log_dir / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            )
        with _children_lock:
            _children[proc.pid] = proc
        threading.Thread(
            target=_reap, args=(proc, name, stdin), name=f"reap-{name}", daemon=True
        ).start()
        context["started_pid"] = proc.pid
        context["started_machine"] = name
        self.logger.info("[%s] started machine %s (pid %d)", runtime.machine_name, name, proc.pid)
        return self.event("success", "success")
