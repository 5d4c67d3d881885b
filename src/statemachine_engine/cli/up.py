"""`statemachine up SYSTEM.yaml` (also `statemachine-up`): run a whole system of machines.

Starts every machine the system file lists (each instance as its own `statemachine`
process), prefixes their output with the machine name, restarts a machine that crashes
(exponential backoff, giving up after too many crashes within a window; a machine that
exits with 2, bad input or a refused start, is not restarted), and on Ctrl-C or SIGTERM
stops them all: SIGTERM, a grace period, then SIGKILL for stragglers. On Linux the children
get SIGTERM from the kernel when `up` dies however it dies (kill -9 included), so no machine
runs on unsupervised.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import shutil
import signal
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from statemachine_engine.cli.common import (
    CliParser,
    add_db_argument,
    add_version_argument,
    opened_store,
    positive_int,
    require_regular_file,
    run_cli,
)
from statemachine_engine.clock import Clock, SystemClock
from statemachine_engine.tools.system import MachineEntry, SystemSpec, load_system

PROG = "statemachine up"
UI_SCRIPT = "statemachine-ui"
#: A child exiting with this code had bad input or was refused a start (e.g. its name already
#: runs): restarting it would fail the same way.
REFUSED = 2
PR_SET_PDEATHSIG = 1


def die_with_parent() -> Callable[[], None] | None:
    """A `preexec_fn` that makes the child get SIGTERM when this process dies, by
    prctl(PR_SET_PDEATHSIG) (Linux; None elsewhere). The kernel sends it when the thread that
    forked exits: children are started from the event loop's (main) thread, which lives as
    long as `up`. A parent that died before the prctl is caught by comparing getppid()."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    parent = os.getpid()

    def arm() -> None:  # runs in the child between fork and exec: no locks, no logging
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0)
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGTERM)

    return arm


def build_parser() -> CliParser:
    parser = CliParser(prog=PROG, description="Run every machine a system file lists.")
    add_version_argument(parser)
    parser.add_argument("system", metavar="SYSTEM", help="system file (YAML)")
    add_db_argument(parser)
    parser.add_argument("--no-ui", action="store_true", help="do not start the UI")
    parser.add_argument(
        "--ui-port", type=positive_int, metavar="PORT", help="the UI's port (default 3001)"
    )
    parser.add_argument("--debug", action="store_true", help="print tracebacks on failure")
    return parser


@dataclass
class Instance:
    """One supervised process: its name, command line and crash history."""

    name: str
    argv: list[str]
    env: dict[str, str]
    stdin: bytes | None = None
    proc: asyncio.subprocess.Process | None = None
    crashes: deque[float] = field(default_factory=deque)
    exit_code: int | None = None


class Supervisor:
    """Starts, watches and stops the instances of a system; `run()` returns the exit code."""

    def __init__(
        self,
        spec: SystemSpec,
        db: str,
        *,
        ui: bool = True,
        ui_port: int | None = None,
        out: TextIO | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.spec = spec
        self.db = db
        self.out = sys.stdout if out is None else out
        #: Crash times and restart delays read this clock (tests inject a virtual one).
        self.clock: Clock = clock or SystemClock()
        self._preexec = die_with_parent()
        self.cwd = spec.workdir or Path.cwd()
        self.instances = [inst for entry in spec.machines for inst in self._instances(entry)]
        if spec.ui and ui:
            self._add_ui(ui_port)
        self.width = max(len(i.name) for i in [*self.instances, Instance("up", [], {})])
        self.stopping = asyncio.Event()

    def _instances(self, entry: MachineEntry) -> list[Instance]:
        env = dict(os.environ, **entry.env)
        env["STATEMACHINE_DB"] = self.db
        env["PYTHONUNBUFFERED"] = "1"
        found = []
        for name in entry.instance_names:
            argv = [sys.executable, "-m", "statemachine_engine.cli.run", str(entry.config)]
            argv += ["--machine-name", name, "--db", self.db]
            for directory in entry.actions_dirs:
                argv += ["--actions-dir", str(directory)]
            stdin = None
            if entry.initial_context:
                argv += ["--initial-context", "@-"]
                stdin = json.dumps(entry.initial_context).encode()
            argv += list(entry.args)
            found.append(Instance(name, argv, env, stdin))
        return found

    def _add_ui(self, port: int | None) -> None:
        local = Path(sys.executable).parent / UI_SCRIPT
        script = str(local) if local.exists() else shutil.which(UI_SCRIPT)
        if script is None:
            self.say(f"warning: `ui: true` but {UI_SCRIPT} is not installed; running without UI")
            return
        env = dict(os.environ, STATEMACHINE_DB=self.db, PYTHONUNBUFFERED="1")
        argv = [script, "--db", self.db] + ([] if port is None else ["--port", str(port)])
        self.instances.append(Instance("ui", argv, env))

    def say(self, message: str, name: str = "up") -> None:
        width = getattr(self, "width", len(name))
        self.out.write(f"{name:<{width}} | {message}\n")
        self.out.flush()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop)
        try:
            tasks = [asyncio.create_task(self._supervise(i)) for i in self.instances]
            await asyncio.gather(*tasks)
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
        if self.stopping.is_set():
            self.say("all machines stopped")
            return 0
        failed = [i.name for i in self.instances if i.exit_code != 0]
        self.say("every machine has ended" + (f"; failed: {', '.join(failed)}" if failed else ""))
        return 1 if failed else 0

    def stop(self) -> None:
        """Begin a clean shutdown (signal handler)."""
        if not self.stopping.is_set():
            self.say("stopping all machines")
            self.stopping.set()

    async def _supervise(self, inst: Instance) -> None:
        policy = self.spec.restart
        while not self.stopping.is_set():
            code = await self._run_once(inst)
            inst.exit_code = code
            if self.stopping.is_set():
                return
            if code == 0:
                self.say("finished (exit 0)", inst.name)
                return
            if code == REFUSED:
                self.say(
                    f"exited with {REFUSED} (bad input or start refused, see above);"
                    " not restarting",
                    inst.name,
                )
                return
            now = self.clock.now()
            inst.crashes.append(now)
            while inst.crashes and now - inst.crashes[0] > policy.window:
                inst.crashes.popleft()
            if len(inst.crashes) > policy.max_restarts:
                self.say(
                    f"crashed (exit {code}) {len(inst.crashes)} times within"
                    f" {policy.window:g} s; giving up",
                    inst.name,
                )
                return
            delay = min(policy.backoff * 2 ** (len(inst.crashes) - 1), policy.max_backoff)
            self.say(f"crashed (exit {code}); restarting in {delay:g} s", inst.name)
            await self._pause(delay)

    async def _pause(self, seconds: float) -> None:
        """Wait `seconds` on the supervisor's clock, or until a stop begins."""
        stop = asyncio.ensure_future(self.stopping.wait())
        sleep = asyncio.ensure_future(self.clock.sleep(seconds))
        try:
            await asyncio.wait({stop, sleep}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (stop, sleep):
                task.cancel()
            await asyncio.gather(stop, sleep, return_exceptions=True)

    async def _run_once(self, inst: Instance) -> int:
        proc = await asyncio.create_subprocess_exec(
            *inst.argv,
            cwd=self.cwd,
            env=inst.env,
            stdin=asyncio.subprocess.PIPE if inst.stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=self._preexec,
        )
        inst.proc = proc
        self.say(f"started (pid {proc.pid})", inst.name)
        if inst.stdin and proc.stdin is not None:
            proc.stdin.write(inst.stdin)
            await proc.stdin.drain()
            proc.stdin.close()
        pump = asyncio.create_task(self._pump(inst, proc))
        waiter = asyncio.create_task(proc.wait())
        stop = asyncio.create_task(self.stopping.wait())
        await asyncio.wait({waiter, stop}, return_when=asyncio.FIRST_COMPLETED)
        if not waiter.done():
            await self._terminate(inst, proc, waiter)
        stop.cancel()
        await pump
        code = await waiter
        inst.proc = None
        return code

    async def _terminate(
        self, inst: Instance, proc: asyncio.subprocess.Process, waiter: asyncio.Task[int]
    ) -> None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), timeout=self.spec.stop_timeout)
            self.say(f"stopped (exit {proc.returncode})", inst.name)
        except TimeoutError:
            self.say(f"did not stop within {self.spec.stop_timeout:g} s; killing", inst.name)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

    async def _pump(self, inst: Instance, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            self.say(line.decode("utf-8", "replace").rstrip("\n"), inst.name)


def _main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from statemachine_engine.database.connect import check_backend, default_url

    require_regular_file(args.system, "a system file")
    spec = load_system(args.system)
    db = args.db or spec.db or default_url()
    check_backend(db)
    if spec.schedules:
        with opened_store(db, create=True) as store:
            for schedule in spec.schedules:
                store.put_schedule(schedule)
    supervisor = Supervisor(spec, db, ui=not args.no_ui, ui_port=args.ui_port)
    return asyncio.run(supervisor.run())


def main(argv: list[str] | None = None) -> int:
    return run_cli(_main, argv, prog=PROG)


if __name__ == "__main__":
    sys.exit(main())
