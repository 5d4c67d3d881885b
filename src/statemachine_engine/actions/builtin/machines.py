"""Actions about other machines: check where one is, start a new one."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from statemachine_engine.actions.base import BaseAction, Declaration, Emits, Param
from statemachine_engine.errors import ActionError, StateMachineError
from statemachine_engine.transport.runtime_dir import validate_machine_name

logger = logging.getLogger(__name__)

_children: dict[int, subprocess.Popen[bytes]] = {}
_children_lock = threading.Lock()


def running_children() -> list[int]:
    """Pids of machines started by this process that have not exited yet."""
    with _children_lock:
        return sorted(_children)


def _reap(
    proc: subprocess.Popen[bytes],
    name: str,
    stdin: bytes | None,
    on_exit: Callable[[int], None],
) -> None:
    """Hand the child its initial context, then wait for it, so it never stays a zombie;
    `on_exit(code)` is called (from this thread) when it has exited."""
    if proc.stdin is not None:
        with contextlib.suppress(OSError):
            proc.stdin.write(stdin or b"")
        with contextlib.suppress(OSError):
            proc.stdin.close()
    code = proc.wait()
    with _children_lock:
        _children.pop(proc.pid, None)
    log = logger.info if code == 0 else logger.warning
    log("started machine %s (pid %d) exited with code %d", name, proc.pid, code)
    on_exit(code)


def _extract(context: dict[str, Any], spec: str) -> tuple[str, Any] | None:
    """A `context_vars` entry: `key`, `a.b.c` (a nested value, passed as `c`) or
    `source as target`; None when the source is not in the context."""
    source, _, target = (part.strip() for part in spec.partition(" as "))
    value: Any = context
    for part in source.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return (target or source.rsplit(".", 1)[-1]), value


def passed_keys(params: Mapping[str, Any]) -> frozenset[str]:
    """The context keys a `start_fsm` with these parameters passes to the machine it starts
    (its `context_vars` targets and literal `initial_context` keys): the load-time check of
    the started file counts them as set."""
    keys = {
        target or source.rsplit(".", 1)[-1]
        for source, _, target in (
            (part.strip() for part in str(var).partition(" as "))
            for var in params.get("context_vars") or ()
        )
    }
    initial = params.get("initial_context")
    if isinstance(initial, Mapping):
        keys.update(str(key) for key in initial)
    return frozenset(keys)


def started_config(value: str, spawner: Path) -> Path:
    """Where `start_fsm` finds `yaml_path`: as given if it exists, else beside the
    spawner's file."""
    path = Path(value)
    if path.is_absolute() or path.exists():
        return path
    return spawner.parent / path


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
    declaration: ClassVar[Declaration] = Declaration(
        params=(
            Param("target_machine", "text", required=True, doc="the machine to look at"),
            Param("expected_states", "names", doc="states that count as expected"),
            Param("expected_state", "names", doc="the same, one state"),
        ),
        emits=(
            Emits("in_expected_state", "in_expected_state", doc="running, in one of them"),
            Emits("unexpected_state", "unexpected_state", doc="running, elsewhere"),
            Emits("not_running", "not_running", doc="not running"),
        ),
    )

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
    `context_vars` (context entries to pass on: `key`, `a.b.c`, `source as target`),
    `initial_context` and `additional_args`.

    The child gets the database URL through its environment and the initial context on its
    stdin (never on the command line), runs in its own session, logs to
    `$STATEMACHINE_LOG_DIR/<machine_name>.log` (default data/logs) and is reaped by a
    waiter thread when it exits. Context: `started_pid`, `started_machine`, and with
    `store_pid: true` the pid appended to `spawned_pids`.

    Handoff: a job this machine claimed with `claim_job` (or any held job, with
    `hand_over: true`) moves to the child with its lease and attempt; the child must end it
    with `complete_job` / `fail_job`, and the child's death fails the attempt.
    """

    provides: ClassVar[frozenset[str] | None] = frozenset(
        {"started_pid", "started_machine", "spawned_pids"}
    )
    declaration: ClassVar[Declaration] = Declaration(
        params=(
            Param("yaml_path", "text", doc="the machine file (relative: to this one's)"),
            Param("config", "text", doc="the same"),
            Param("machine_name", "text", required=True, doc="the new machine's name"),
            Param("context_vars", "list", doc="context entries to pass on"),
            Param("initial_context", doc="a mapping merged into its context"),
            Param("additional_args", "list", doc="extra command-line arguments"),
            Param("store_pid", "bool", doc="append the pid to context `spawned_pids`"),
            Param("hand_over", "bool", doc="hand over the held job (default: if claimed by id)"),
        ),
        emits=(Emits("success", "success", doc="the process was started"),),
        one_of=(("yaml_path", "config"),),
    )

    async def execute(self, context: dict[str, Any]) -> str | None:
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
        config_path = started_config(str(config), runtime.config_path)
        initial = self.param("initial_context", context, None) or {}
        if not isinstance(initial, dict):
            raise ActionError("start_fsm: 'initial_context' must be a mapping")
        initial = dict(initial)
        for var in self.config.get("context_vars") or ():
            found = _extract(context, str(var))
            if found is None:
                self.logger.warning(
                    "[%s] start_fsm: context has no %r to pass to %s",
                    runtime.machine_name,
                    var,
                    name,
                )
                continue
            initial[found[0]] = found[1]
        hand_over = self.config.get("hand_over")
        handing = runtime.job is not None and (
            hand_over is True or (hand_over is None and runtime.job_by_id)
        )
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
        # With a handoff the child always reads its context from stdin, which is written
        # only after the lease has moved: it cannot look for its job too early.
        stdin = json.dumps(initial, default=str).encode() if initial or handing else None
        if stdin is not None:
            argv += ["--initial-context", "@-"]
        if handing:
            assert runtime.job is not None
            argv += ["--hold-job", runtime.job.job_id, "--report-to", runtime.machine_name]
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
        refused: ActionError | None = None
        if handing:
            try:
                runtime.hand_over(name, proc.pid, context)
            except ActionError as exc:
                proc.kill()
                refused = exc
        loop = asyncio.get_running_loop()

        def exited(code: int, pid: int = proc.pid) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nothing to tell
                loop.call_soon_threadsafe(runtime.child_exited, name, pid, code)

        threading.Thread(
            target=_reap, args=(proc, name, stdin, exited), name=f"reap-{name}", daemon=True
        ).start()
        if refused is not None:
            raise refused
        context["started_pid"] = proc.pid
        context["started_machine"] = name
        if self.config.get("store_pid") is True:
            context["spawned_pids"] = [*(context.get("spawned_pids") or []), proc.pid]
        self.logger.info("[%s] started machine %s (pid %d)", runtime.machine_name, name, proc.pid)
        return self.event("success", "success")
