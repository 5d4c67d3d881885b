"""`bash`: run a shell command with every placeholder escaped for where it stands."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping
from typing import Any, ClassVar

from statemachine_engine.actions.base import BaseAction, Declaration, Emits, Failure, Param
from statemachine_engine.core.interpolate import MAX_ARG_BYTES, render_shell, to_text
from statemachine_engine.core.pendingstep import TAIL_BYTES, CommandRun, tail_of
from statemachine_engine.core.runtime import CommandResult
from statemachine_engine.core.storable import clipped
from statemachine_engine.errors import ActionError

OUTPUT_CAP = 1024 * 1024
"""Bytes of stdout and of stderr kept in the context; the rest is read and dropped."""
TRUNCATED = "\n[output truncated]"
SECRET_ENV = ("STATEMACHINE_UI_TOKEN", "STATEMACHINE_DB", "PGPASSWORD")
"""Variables a command does not inherit unless the action lists them under `pass_env`."""
READ_GRACE = 1.0
"""Seconds to finish reading output after the process group is gone (a detached
grandchild may still hold the pipes)."""
DEFAULT_TIMEOUT = 30.0
REASON_TAIL = 2000
"""Characters of stderr kept in a failure's reason (the job's error)."""


class _Capture:
    """Reads one stream to its end, so the child never blocks on a full pipe, keeping the
    first `cap` bytes and the last TAIL_BYTES (memory stays bounded whatever the output)."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.kept = bytearray()
        self.truncated = False
        self.last = bytearray()

    async def drain(self, stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(65536):
            room = self.cap - len(self.kept)
            if room > 0:
                self.kept += chunk[:room]
            if len(chunk) > max(room, 0):
                self.truncated = True
            self.last += chunk[-TAIL_BYTES:]
            del self.last[:-TAIL_BYTES]

    def text(self) -> str:
        text = self.kept.decode("utf-8", "replace")
        return text + TRUNCATED if self.truncated else text

    def tail(self) -> str:
        """The last TAIL_BYTES bytes read, from a whole character on."""
        start = 0
        while start < min(4, len(self.last)) and self.last[start] & 0xC0 == 0x80:
            start += 1  # a character cut at the front
        return self.last[start:].decode("utf-8", "replace")


class _Protocol(asyncio.subprocess.SubprocessStreamProtocol):
    """Stream protocol that also reports when the process itself exits (asyncio's `wait()`
    waits for the pipes too, which a background child can hold open forever)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=2**16, loop=loop)
        self.exited: asyncio.Future[None] = loop.create_future()

    def process_exited(self) -> None:
        super().process_exited()
        if not self.exited.done():
            self.exited.set_result(None)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _check_env(name: str, value: str) -> None:
    if "\x00" in value:
        raise ActionError(f"bash: environment variable {name} contains a NUL byte")
    size = len(name) + 1 + len(os.fsencode(value))
    if size >= MAX_ARG_BYTES:
        raise ActionError(
            f"bash: environment variable {name} is {size} bytes; values of {MAX_ARG_BYTES} "
            "bytes or more cannot be passed, use the `stdin` parameter or a file"
        )


class BashAction(BaseAction):
    """Run `command` with bash in its own process group.

    Exit 0 → `success` (default job_done); a code listed in `error_mappings` → that event;
    else `error`. `timeout` (seconds, default 30, null for none) kills the whole group and
    returns `timeout_event` (default: the error event); so does cancellation. stdout, stderr
    (each capped at 1 MiB) and `exit_code` land in the context. `stdin` feeds a value to the
    command (the way to pass big values), `env` adds variables, `cwd` sets the directory,
    `pass_env` lists secret variables (e.g. STATEMACHINE_DB) the command may inherit.
    Background processes still running when the command exits are killed with it.
    A non-zero exit, a mapped code and a timeout are failures: the reason (exit code and the
    tail of stderr, or the timeout) becomes the held job's error.
    """

    declaration: ClassVar[Declaration] = Declaration(
        params=(
            Param("command", "text", required=True, doc="the command; placeholders are escaped"),
            Param(
                "timeout", "number", doc="seconds before the process group is killed", default=30
            ),
            Param("stdin", doc="a value fed to the command's standard input"),
            Param("env", "map", doc="extra environment variables"),
            Param("cwd", "text", doc="working directory"),
            Param("pass_env", "list", doc="secret variables the command may inherit"),
            Param("error_mappings", "map", doc="exit code -> failure event", failure_map=True),
        ),
        emits=(
            Emits("success", "job_done", doc="exit code 0"),
            Emits("error", "error", failure=True, doc="a non-zero exit code not mapped"),
            Emits("timeout_event", None, failure=True, doc="the timeout (default: `error`)"),
        ),
    )

    provides: ClassVar[frozenset[str] | None] = frozenset(
        {
            "stdout",
            "stderr",
            "exit_code",
            "output",
            "last_error",
            "last_error_action",
            "last_error_command",
            "last_error_exit_code",
        }
    )

    async def execute(self, context: dict[str, Any]) -> str | None:
        template = self.get_config_value("command")
        if not isinstance(template, str) or not template.strip():
            raise ActionError("bash: parameter 'command' is required")
        command = render_shell(template, context)
        stdin = self._stdin(context)
        timeout = self._timeout(context)
        stub = self.runtime.bash_stub
        ran = stub(command, self) if stub is not None else None
        self.logger.debug("[%s] bash runs: %s", self.get_machine_name(context), command)
        if ran is None:
            ran = await self._spawn(command, stdin, timeout, context)
        self._record(command, ran, context)
        return self._outcome(command, ran, timeout, context)

    def _record(self, command: str, ran: CommandResult, context: dict[str, Any]) -> None:
        """Keep the command as run, its exit code and the tails of its output for the held
        job's history (stored with the step), and log them at DEBUG."""
        out = tail_of(ran.stdout) if ran.stdout_tail is None else ran.stdout_tail
        err = tail_of(ran.stderr) if ran.stderr_tail is None else ran.stderr_tail
        self.runtime.pending.command = CommandRun(clipped(command), ran.exit_code, out, err)
        self.logger.debug(
            "[%s] bash exit code %s%s; stdout: %r; stderr: %r",
            self.get_machine_name(context),
            ran.exit_code,
            " (timed out)" if ran.timed_out else "",
            out,
            err,
        )

    async def _spawn(
        self, command: str, stdin: bytes | None, timeout: float | None, context: dict[str, Any]
    ) -> CommandResult:
        """Run the command with bash in its own process group and collect what it did."""
        loop = asyncio.get_running_loop()
        spawn = asyncio.ensure_future(
            loop.subprocess_exec(
                lambda: _Protocol(loop),
                "bash",
                "-c",
                command,
                stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self._environment(context),
                cwd=self._cwd(context),
                start_new_session=True,
            )
        )
        transport, protocol = await _started(spawn)
        proc = asyncio.subprocess.Process(transport, protocol, loop)
        reaper = _start_reaper(proc.pid)
        try:
            timed_out, out, err = await self._run(proc, protocol, stdin, timeout)
        finally:
            _kill_group(proc.pid)
            _stop_reaper(reaper)
            transport.close()
        return CommandResult(
            transport.get_returncode(), out.text(), err.text(), timed_out, out.tail(), err.tail()
        )

    def _outcome(
        self, command: str, ran: CommandResult, timeout: float | None, context: dict[str, Any]
    ) -> str | None:
        """The event for what the command did; stdout, stderr and the exit code go to the
        context, and a failure carries its reason."""
        code, out, err = ran.exit_code, ran.stdout, ran.stderr
        context.update(stdout=out, stderr=err, exit_code=code, output=out.strip())
        if ran.timed_out:
            reason = f"command timed out after {timeout or 0:g}s; its process group was killed"
            context.update(
                last_error=reason,
                last_error_action="bash",
                last_error_command=command,
                last_error_exit_code=code,
            )
            return Failure(self.event("timeout_event", self.event("error", "error")) or "", reason)
        if code == 0:
            return self.event("success", "job_done")
        mappings = self.config.get("error_mappings") or {}
        if not isinstance(mappings, Mapping):
            raise ActionError("bash: 'error_mappings' must map exit codes to event names")
        mapped = mappings.get(code, mappings.get(str(code)))
        event = str(mapped) if mapped is not None else self.event("error", "error") or "error"
        tail = err.strip()[-REASON_TAIL:]
        named = f" ({event})" if mapped is not None else ""
        reason = f"exit code {code}{named}" + (f": {tail}" if tail else "")
        context.update(
            last_error=reason,
            last_error_action="bash",
            last_error_command=command,
            last_error_exit_code=code,
        )
        return Failure(event, reason)

    async def _run(
        self,
        proc: asyncio.subprocess.Process,
        protocol: _Protocol,
        stdin: bytes | None,
        timeout: float | None,
    ) -> tuple[bool, _Capture, _Capture]:
        """Feed stdin and read both pipes while waiting for the exit; kill the group at
        the timeout, on cancellation and once the command has exited."""
        assert proc.stdout is not None and proc.stderr is not None
        out, err = _Capture(OUTPUT_CAP), _Capture(OUTPUT_CAP)
        tasks = [
            asyncio.ensure_future(out.drain(proc.stdout)),
            asyncio.ensure_future(err.drain(proc.stderr)),
        ]
        if stdin is not None and proc.stdin is not None:
            tasks.append(asyncio.ensure_future(_feed(proc.stdin, stdin)))
        timed_out = False
        try:
            try:
                await asyncio.wait_for(asyncio.shield(protocol.exited), timeout)
            except TimeoutError:
                timed_out = True
            _kill_group(proc.pid)
            await protocol.exited
            await asyncio.wait(tasks, timeout=READ_GRACE)
        except BaseException:
            _kill_group(proc.pid)
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(protocol.exited), READ_GRACE)
            raise
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return timed_out, out, err

    def _stdin(self, context: dict[str, Any]) -> bytes | None:
        if "stdin" not in self.config:
            return None
        text = to_text(self.param("stdin", context))
        try:
            return text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError as exc:
            raise ActionError(f"bash: 'stdin' holds text that cannot be encoded: {exc}") from None

    def _timeout(self, context: dict[str, Any]) -> float | None:
        value = self.param("timeout", context, DEFAULT_TIMEOUT)
        if value is None:
            return None
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            raise ActionError(
                f"bash: 'timeout' must be a number of seconds, not {value!r}"
            ) from None
        if seconds <= 0:
            raise ActionError(f"bash: 'timeout' must be positive, not {value!r}")
        return seconds

    def _cwd(self, context: dict[str, Any]) -> str | None:
        if self.config.get("cwd") is None:
            return None
        cwd = to_text(self.param("cwd", context))
        if not os.path.isdir(cwd):
            raise ActionError(f"bash: cwd {cwd!r} is not a directory")
        return cwd

    def _environment(self, context: dict[str, Any]) -> dict[str, str]:
        keep = {str(name) for name in self.config.get("pass_env") or ()}
        env = {k: v for k, v in os.environ.items() if k not in SECRET_ENV or k in keep}
        extra = self.param("env", context, None) or {}
        if not isinstance(extra, Mapping):
            raise ActionError("bash: 'env' must map variable names to values")
        for key, value in extra.items():
            env[str(key)] = to_text(value)
        env["STATEMACHINE_MACHINE"] = str(context.get("machine_name", ""))
        env["STATEMACHINE_STATE"] = str(context.get("current_state", ""))
        env["STATEMACHINE_STEP_KEY"] = str(context.get("step_key", ""))
        job = context.get("current_job")
        if isinstance(job, Mapping):
            env["STATEMACHINE_JOB_ID"] = str(job.get("id", ""))
        for key, value in env.items():
            _check_env(key, value)
        return env


_REAPER_SCRIPT = 'read -r _; kill -KILL -"$1" 2>/dev/null'


def _start_reaper(pgid: int) -> subprocess.Popen[bytes] | None:
    """A watcher in its own session that kills the command's process group when this
    process dies, even by SIGKILL: it waits for end-of-file on a pipe only we hold open.
    Without it a killed worker would leave its command running as an orphan."""
    try:
        return subprocess.Popen(
            ["sh", "-c", _REAPER_SCRIPT, "reaper", str(pgid)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError:
        return None


def _stop_reaper(reaper: subprocess.Popen[bytes] | None) -> None:
    """The command's group is gone: stop the watcher without letting it kill anything."""
    if reaper is None:
        return
    with contextlib.suppress(OSError):
        reaper.kill()
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        reaper.wait(timeout=READ_GRACE)
    if reaper.stdin is not None:
        with contextlib.suppress(OSError):
            reaper.stdin.close()


async def _started(
    spawn: asyncio.Future[tuple[asyncio.SubprocessTransport, _Protocol]],
) -> tuple[asyncio.SubprocessTransport, _Protocol]:
    """Await the spawn; cancelled meanwhile, kill the new process group before re-raising
    (asyncio would otherwise wait for the pipes, which a child may hold open for good)."""
    try:
        return await asyncio.shield(spawn)
    except asyncio.CancelledError:
        spawn.add_done_callback(_kill_spawned)
        await asyncio.wait({spawn}, timeout=READ_GRACE)
        raise


def _kill_spawned(spawn: asyncio.Future[tuple[asyncio.SubprocessTransport, _Protocol]]) -> None:
    if spawn.cancelled() or spawn.exception() is not None:
        return
    transport, _ = spawn.result()
    _kill_group(transport.get_pid())
    transport.close()


async def _feed(writer: asyncio.StreamWriter, data: bytes) -> None:
    """Write stdin while the pipes are read (writing first could deadlock on a full pipe)."""
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        writer.write(data)
        await writer.drain()
    writer.close()
