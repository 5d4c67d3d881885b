"""`bash`: run a shell command with every placeholder escaped for where it stands."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from typing import Any, ClassVar

from statemachine_engine.actions.base import BaseAction
from statemachine_engine.errors import ActionError

OUTPUT_CAP = 1024 * 1024
TRUNCATED = "\n[output truncated]"
SECRET_ENV = ("STATEMACHINE_UI_TOKEN", "STATEMACHINE_DB", "PGPASSWORD")


async def _read_capped(stream: asyncio.StreamReader, cap: int) -> str:
    """Read a stream to its end (so the child never blocks on a full pipe), keeping `cap`."""
    kept = bytearray()
    truncated = False
    while chunk := await stream.read(65536):
        room = cap - len(kept)
        if room > 0:
            kept += chunk[:room]
        if len(chunk) > max(room, 0):
            truncated = True
    text = kept.decode("utf-8", "replace")
    return text + TRUNCATED if truncated else text


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


class BashAction(BaseAction):
    """Run `command` with bash; exit 0 → `success` (default job_done), a code listed in
    `error_mappings` → that event, else `error`; `timeout` (s, default 30) → `timeout_event`
    (default: the error event). stdout, stderr and exit code land in the context."""

    provides: ClassVar[frozenset[str] | None] = frozenset(
        {"stdout", "stderr", "exit_code", "output", "last_error", "last_error_action",
         "last_error_command", "last_error_exit_code"}
    )

    async def execute(self, context: dict[str, Any]) -> str | None:
        from statemachine_engine.core.interpolate import render_shell, render_text

        template = self.get_config_value("command")
        if not isinstance(template, str) or not template.strip():
            raise ActionError("bash: parameter 'command' is required")
        command = render_shell(template, context)
        stdin_text = self.config.get("stdin")
        stdin = render_text(str(stdin_text), context).encode() if stdin_text is not None else None
        timeout = float(self.config.get("timeout", 30))
        proc = await asyncio.create_subprocess_exec(
            "bash", "-c", command,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self._environment(context),
            cwd=self.config.get("cwd"),
            start_new_session=True,
        )
        try:
            stdout, stderr, code = await asyncio.wait_for(self._communicate(proc, stdin), timeout)
        except TimeoutError:
            _kill_group(proc)
            await proc.wait()
            context.update(last_error=f"command timed out after {timeout:g}s",
                           last_error_action="bash", last_error_command=command)
            return self.event("timeout_event", self.event("error", "error"))
        except BaseException:
            _kill_group(proc)
            with contextlib.suppress(Exception):
                await asyncio.shield(proc.wait())
            raise
        context.update(stdout=stdout, stderr=stderr, exit_code=code, output=stdout.strip())
        if code == 0:
            return self.event("success", "job_done")
        context.update(
            last_error=(stderr.strip() or f"command exited with code {code}")[-2000:],
            last_error_action="bash", last_error_command=command, last_error_exit_code=code,
        )
        mappings = self.config.get("error_mappings") or {}
        mapped = mappings.get(code, mappings.get(str(code)))
        return str(mapped) if mapped is not None else self.event("error", "error")

    async def _communicate(
        self, proc: asyncio.subprocess.Process, stdin: bytes | None
    ) -> tuple[str, str, int]:
        assert proc.stdout is not None and proc.stderr is not None
        if stdin is not None and proc.stdin is not None:
            proc.stdin.write(stdin)
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                await proc.stdin.drain()
            proc.stdin.close()
        out, err = await asyncio.gather(
            _read_capped(proc.stdout, OUTPUT_CAP), _read_capped(proc.stderr, OUTPUT_CAP)
        )
        code = await proc.wait()
        return out, err, code

    def _environment(self, context: dict[str, Any]) -> dict[str, str]:
        from statemachine_engine.core.interpolate import render_text

        env = {k: v for k, v in os.environ.items() if k not in SECRET_ENV}
        extra = self.config.get("env") or {}
        for key, value in extra.items():
            env[str(key)] = render_text(str(value), context)
        env["STATEMACHINE_MACHINE"] = str(context.get("machine_name", ""))
        env["STATEMACHINE_STATE"] = str(context.get("current_state", ""))
        env["STATEMACHINE_STEP_KEY"] = str(context.get("step_key", ""))
        job = context.get("current_job")
        if isinstance(job, dict):
            env["STATEMACHINE_JOB_ID"] = str(job.get("id", ""))
        return env
