"""MachineHarness: run your machines in-process in a test, on the real engine and a real
SQLite store, with a virtual clock, stubbed shell commands and no sockets."""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from statemachine_engine.actions.base import BaseAction
from statemachine_engine.clock import VirtualClock
from statemachine_engine.config import load_definition
from statemachine_engine.core import ActionLoader, StateMachineEngine
from statemachine_engine.core.loader import default_actions_dirs
from statemachine_engine.core.runtime import CommandResult, owner_of
from statemachine_engine.database.records import Job, MachineEvent
from statemachine_engine.database.sqlite import SQLiteStore
from statemachine_engine.errors import ActionError
from statemachine_engine.tools.system import load_system

#: How long a harness lets a parked machine sit before its own safety re-check: never, in
#: practice (the harness wakes machines itself).
_SAFETY = 10 * 365 * 24 * 3600.0

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class BashStub:
    """A stubbed command: rendered commands matching `pattern` (fnmatch) "run" with this
    result instead of bash."""

    pattern: str
    result: CommandResult


@dataclass
class _Machine:
    engine: StateMachineEngine
    task: asyncio.Task[int]


class _Returns(BaseAction):
    """A stubbed action: returns its event without doing anything."""

    def __init__(self, config: dict[str, Any], event: str | None) -> None:
        super().__init__(config)
        self._event = event

    async def execute(self, context: dict[str, Any]) -> str | None:
        return self._event


class _Log(logging.Handler):
    """Keeps the engine's and the actions' log records for `MachineHarness.logs`."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class MachineHarness:
    """One machine (or a whole system file) running in-process for a test.

    ```python
    async with MachineHarness("worker.yaml", tmp_path=tmp_path) as m:
        m.stub_bash("printf*", stdout="ok")
        m.add_job("task", {"text": "hi"}, job_id="j1")
        await m.settle()
        assert m.job("j1").status == "completed"
    ```

    `settle()` runs until every machine waits with nothing to do (events between machines
    are delivered, due timers fire); `clock.advance(seconds)` moves the virtual clock.
    Commands that no stub matches run for real, unless `strict=True`. `jobs` are enqueued
    (as `(job_type, data)`) before the machines start; `handed_job=(job_type, data)` starts
    the (first) machine holding that job, as `start_fsm` hands one to a machine it starts.
    """

    def __init__(
        self,
        config: PathLike | None = None,
        *,
        actions_dir: PathLike | Sequence[PathLike] | None = None,
        tmp_path: PathLike | None = None,
        machine_name: str | None = None,
        initial_context: Mapping[str, Any] | None = None,
        strict: bool = False,
        clock: VirtualClock | None = None,
        machines: Sequence[tuple[PathLike, str, Mapping[str, Any] | None]] = (),
        jobs: Sequence[tuple[str, Any]] = (),
        handed_job: tuple[str, Any] | None = None,
        **engine_options: Any,
    ) -> None:
        self._own_tmp: tempfile.TemporaryDirectory[str] | None = None
        if tmp_path is None:
            self._own_tmp = tempfile.TemporaryDirectory(prefix="sm-harness-")
            tmp_path = self._own_tmp.name
        self.tmp_path = Path(tmp_path)
        self.clock = clock or VirtualClock()
        self.strict = strict
        self.stubs: list[BashStub] = []
        self.commands: list[str] = []
        self._queued: dict[tuple[str, str, int], list[CommandResult]] = {}
        self._dirs = _dirs(actions_dir)
        self._specs = list(machines)
        self._jobs = list(jobs)
        self._handed = handed_job
        self._action_stubs: dict[str, str | None] = {}
        if config is not None:
            self._specs.insert(0, (config, machine_name or "", initial_context))
        if not self._specs:
            raise ValueError("MachineHarness needs a machine file (or use MachineHarness.system)")
        self._options = {"safety_interval": _SAFETY, **engine_options}
        self._machines: dict[str, _Machine] = {}
        self._log = _Log()
        self.store: SQLiteStore | None = None

    @classmethod
    def system(cls, path: PathLike, **options: Any) -> MachineHarness:
        """Every machine (and instance) of a system file, in one harness."""
        spec = load_system(path)
        machines = [
            (entry.config, name, entry.initial_context)
            for entry in spec.machines
            for name in entry.instance_names
        ]
        return cls(machines=machines, **options)

    # -- lifecycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> MachineHarness:
        await self.start()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self, *, settle: bool = True) -> None:
        """Load the machines and start them (and, with `settle`, run until they wait)."""
        self.store = SQLiteStore(str(self.tmp_path / "harness.db"), clock=self.clock)
        logging.getLogger("statemachine_engine").addHandler(self._log)
        for job_type, data in self._jobs:
            self.store.add_job(job_type, data)
        for config, name, context in self._specs:
            self._start_one(Path(config), name, context)
        if settle:
            await self.settle()

    def _start_one(self, config: Path, name: str, context: Mapping[str, Any] | None) -> None:
        assert self.store is not None
        loader = ActionLoader(self._dirs or default_actions_dirs([], config))
        definition = load_definition(config, loader, extra_context_keys=(context or {}).keys())
        name = name or str(definition.metadata.get("machine_name") or config.stem)
        hold = None
        if self._handed is not None and not self._machines:
            job = self.store.add_job(self._handed[0], self._handed[1])
            self.store.claim_job(None, owner_of(name), job_id=job.job_id)
            hold = job.job_id
        engine = StateMachineEngine(
            definition,
            name,
            store=self.store,
            clock=self.clock,
            loader=loader,
            initial_context=context,
            listen=False,
            hold_job=hold,
            **self._options,
        )
        engine.runtime.bash_stub = lambda command, action: self._stubbed(engine, command, action)
        for state, specs in definition.entry_actions.items():
            for index, spec in enumerate(specs):
                if spec.type in self._action_stubs:
                    event = self._action_stubs[spec.type]
                    engine.actions[state][index] = _Returns(dict(spec.params), event)
        task = asyncio.create_task(engine.run(), name=f"harness {name}")
        self._machines[name] = _Machine(engine, task)

    async def close(self) -> None:
        """Stop every machine and close the store."""
        for running in self._machines.values():
            running.engine.stop()
        tasks = [m.task for m in self._machines.values()]
        if tasks:
            await asyncio.wait(tasks, timeout=10)
        for task in tasks:
            if not task.done():
                task.cancel()
        logging.getLogger("statemachine_engine").removeHandler(self._log)
        if self.store is not None:
            self.store.close()
        if self._own_tmp is not None:
            self._own_tmp.cleanup()

    # -- driving -------------------------------------------------------------------------------

    def stub_bash(
        self,
        pattern: str,
        exit_code: int = 0,
        stdout: str = "",
        stderr: str = "",
        *,
        timed_out: bool = False,
    ) -> None:
        """Commands matching `pattern` (fnmatch on the rendered command) do not run: they
        "exit" with `exit_code`, print `stdout`/`stderr`, or time out. Later stubs win."""
        self.stubs.insert(0, BashStub(pattern, CommandResult(exit_code, stdout, stderr, timed_out)))

    def stub_action(self, action_type: str, event: str | None = None) -> None:
        """Actions of `action_type` do not run: each returns `event` (None: nothing). Must be
        called before the harness starts (e.g. keep `start_fsm` from spawning processes)."""
        if self.store is not None:
            raise RuntimeError("stub_action must be called before the harness starts")
        self._action_stubs[action_type] = event

    def stub_bash_in(
        self,
        state: str,
        exit_code: int = 0,
        stdout: str = "",
        stderr: str = "",
        *,
        timed_out: bool = False,
        action: int = 0,
        times: int = 1,
        machine: str | None = None,
    ) -> None:
        """The next `times` runs of the `action`-th `bash` action of `state` (counting only
        `bash` actions, from 0) of `machine` (default: any) give this result, before any
        pattern stub applies. May be called before the harness starts."""
        key = (machine or "", state, action)
        result = CommandResult(exit_code, stdout, stderr, timed_out)
        self._queued.setdefault(key, []).extend([result] * times)

    def _stubbed(
        self, engine: StateMachineEngine, command: str, action: object
    ) -> CommandResult | None:
        self.commands.append(command)
        bashes = [a for a in engine.actions.get(engine.state, ()) if type(a) is type(action)]
        index = next((i for i, a in enumerate(bashes) if a is action), -1)
        for machine in (engine.machine_name, ""):
            queued = self._queued.get((machine, engine.state, index))
            if queued:
                return queued.pop(0)
        for stub in self.stubs:
            if fnmatch.fnmatchcase(command, stub.pattern):
                return stub.result
        if self.strict:
            raise ActionError(f"no stub for command {command!r} (strict harness)")
        return None

    def add_job(
        self, job_type: str, data: Any = None, *, job_id: str | None = None, **options: Any
    ) -> Job:
        """Enqueue a job (as `statemachine-cli add-job`) and wake the machines."""
        job = self._store.add_job(job_type, data, job_id=job_id, **options)
        self._wake_all()
        return job

    async def send(
        self, event: str, payload: Any = None, *, target: str | None = None
    ) -> MachineEvent:
        """Send an event to `target` (default: the harness's only, or first, machine), as
        `statemachine-cli send-event` does."""
        name = target or self.name
        sent = self._store.send_event(name, event, payload)
        self._running(name).engine.wake()
        await asyncio.sleep(0)
        return sent

    async def settle(self, timeout: float = 10.0) -> None:
        """Run until every machine is parked with nothing to do: events waiting for a
        machine are delivered (it is woken) and timers due on the clock fire. Raises
        TimeoutError naming the machines that did not settle."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        quiet_rounds = 0
        while quiet_rounds < 3:
            await asyncio.sleep(0)
            busy = [name for name, m in self._machines.items() if not self._settled(m)]
            if busy:
                quiet_rounds = 0
                if loop.time() > deadline:
                    where = {n: self._machines[n].engine.snapshot() for n in busy}
                    raise TimeoutError(f"machines did not settle within {timeout} s: {where}")
                await asyncio.sleep(0.001)
                continue
            woken = [name for name in self._machines if self._store.next_event(name) is not None]
            for name in woken:
                self._machines[name].engine.wake()
            quiet_rounds = 0 if woken else quiet_rounds + 1

    def _settled(self, machine: _Machine) -> bool:
        if machine.task.done():
            return True
        return machine.engine.settled

    def _wake_all(self) -> None:
        for running in self._machines.values():
            running.engine.wake()

    # -- looking -------------------------------------------------------------------------------

    @property
    def names(self) -> tuple[str, ...]:
        """The machines of this harness, in start order."""
        return tuple(self._machines)

    @property
    def name(self) -> str:
        """The harness's first machine."""
        return next(iter(self._machines))

    def engine(self, name: str | None = None) -> StateMachineEngine:
        """The engine running `name` (default: the first machine)."""
        return self._running(name or self.name).engine

    @property
    def state(self) -> str:
        return self.engine().state

    @property
    def context(self) -> dict[str, Any]:
        return self.engine().context

    def state_of(self, name: str) -> str:
        return self.engine(name).state

    @property
    def transitions(self) -> list[tuple[str | None, str, str | None]]:
        """(from, to, event) of every step the first machine has committed, oldest first."""
        return self.transitions_of(self.name)

    def transitions_of(self, name: str) -> list[tuple[str | None, str, str | None]]:
        self.engine(name).make_visible()
        rows = reversed(self._store.history(machine=name, limit=100_000))
        return [(row.from_state, row.to_state, row.event) for row in rows]

    def job(self, job_id: str) -> Job:
        found = self._store.get_job(job_id)
        if found is None:
            raise KeyError(f"no job {job_id!r}")
        return found

    @property
    def events_sent(self) -> list[MachineEvent]:
        """Events the machines of this harness sent, oldest first."""
        names = set(self._machines)
        events = self._store.list_events(limit=100_000)
        return sorted((e for e in events if e.source_machine in names), key=lambda e: e.id)

    @property
    def logs(self) -> list[str]:
        """Log lines of the engine and the actions (`[machine] message`), oldest first."""
        return [record.getMessage() for record in self._log.records]

    def exit_code(self, name: str | None = None) -> int | None:
        """The machine's exit code once it has ended (a final state or a stop), else None."""
        task = self._running(name or self.name).task
        return task.result() if task.done() and not task.cancelled() else None

    @property
    def _store(self) -> SQLiteStore:
        if self.store is None:
            raise RuntimeError("the harness is not started: use `async with MachineHarness(...)`")
        return self.store

    def _running(self, name: str) -> _Machine:
        try:
            return self._machines[name]
        except KeyError:
            raise KeyError(
                f"no machine {name!r} in this harness ({', '.join(self._machines)})"
            ) from None


def _dirs(value: PathLike | Sequence[PathLike] | None) -> list[Path]:
    if value is None:
        return []
    if isinstance(value, str | os.PathLike):
        return [Path(value)]
    items: Iterable[PathLike] = value
    return [Path(item) for item in items]
