"""Actions about other machines: check where one is, start a new one."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

from statemachine_engine.actions.base import BaseAction
from statemachine_engine.errors import ActionError


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
    """Is `target_machine` running and in one of `expected_states`? Returns
    `in_expected_state`, `unexpected_state` or `not_running` (each renamable by the key
    of the same name)."""

    provides: ClassVar[frozenset[str] | None] = frozenset({"unexpected_machine_state"})

    async def execute(self, context: dict[str, Any]) -> str | None:
        target = str(self.param("target_machine", context))
        expected = self.param("expected_states", context, self.config.get("expected_state", []))
        states = {expected} if isinstance(expected, str) else {str(s) for s in expected}
        status = self.runtime.store.get_machine(target)
        if status is None or status.status != "running" or not _alive(status.pid,
                                                                       status.hostname):
            return self.event("not_running", "not_running")
        if not states or status.current_state in states:
            return self.event("in_expected_state", "in_expected_state")
        context["unexpected_machine_state"] = status.current_state
        return self.event("unexpected_state", "unexpected_state")


class StartFsmAction(BaseAction):
    """Spawn another machine process: `yaml_path` (or `config`), `machine_name`, optional
    `context_vars` (context keys to pass on) and `initial_context`. Its output goes to
    `<log dir>/<machine_name>.log`; the pid lands in context `started_pid`."""

    provides: ClassVar[frozenset[str] | None] = frozenset({"started_pid", "started_machine"})

    async def execute(self, context: dict[str, Any]) -> str | None:
        runtime = self.runtime
        config = self.param("yaml_path", context, self.config.get("config"))
        name = self.param("machine_name", context, None)
        if not config or not name:
            raise ActionError("start_fsm: 'yaml_path' and 'machine_name' are required")
        config_path = Path(str(config))
        if not config_path.is_absolute() and not config_path.exists():
            config_path = runtime.config_path.parent / config_path
        initial = dict(self.param("initial_context", context, {}) or {})
        for key in self.config.get("context_vars", []) or []:
            if key in context:
                initial[str(key)] = context[key]
        argv = [sys.executable, "-m", "statemachine_engine.cli.run", str(config_path),
                "--machine-name", str(name), "--db", runtime.db_url,
                "--initial-context", json.dumps(initial, default=str)]
        for directory in runtime.actions_dirs:
            argv += ["--actions-dir", str(directory)]
        argv += [str(a) for a in self.config.get("additional_args", []) or []]
        log_dir = Path(os.environ.get("STATEMACHINE_LOG_DIR", "data/logs"))
        log_dir.mkdir(parents=True, exist_ok=True)
        with open(log_dir / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        context["started_pid"] = proc.pid
        context["started_machine"] = str(name)
        self.logger.info("[%s] started machine %s (pid %d)", runtime.machine_name, name,
                         proc.pid)
        return self.event("success", "success")
