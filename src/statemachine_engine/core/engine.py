"""StateMachineEngine: the runtime loop around the pure transition function."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from statemachine_engine.actions.base import BaseAction
from statemachine_engine.clock import Clock, SystemClock, iso
from statemachine_engine.config.model import MachineDefinition, Transition
from statemachine_engine.core.loader import ActionLoader
from statemachine_engine.core.runtime import Runtime
from statemachine_engine.core.transitions import ERROR_EVENT, decide, is_idle, next_timeout
from statemachine_engine.database.connect import default_url, open_store
from statemachine_engine.database.records import MachineEvent, Step
from statemachine_engine.database.store import Store
from statemachine_engine.errors import StateMachineError

logger = logging.getLogger(__name__)

DEFAULT_SAFETY_INTERVAL = 5.0
DEFAULT_LEASE_SECONDS = 30.0


class StateMachineEngine:
    """Runs one machine: enters states, runs their actions, fires transitions, parks when
    there is nothing to do, and commits every step (state, job ack, events) in one
    transaction. `run()` returns the process exit code (0 at a final state or on stop)."""

    def __init__(
        self,
        definition: MachineDefinition,
        machine_name: str,
        *,
        store: Store | None = None,
        db_url: str | None = None,
        clock: Clock | None = None,
        loader: ActionLoader | None = None,
        actions_dirs: Iterable[str | Path] = (),
        initial_context: Mapping[str, Any] | None = None,
        safety_interval: float = DEFAULT_SAFETY_INTERVAL,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        backoff_base: float = 1.0,
        listen: bool = True,
    ) -> None:
        self.definition = definition
        self.machine_name = machine_name
        self.clock: Clock = clock or SystemClock()
        self.db_url = db_url or (store.url if store is not None else default_url())
        self.store: Store = store or open_store(self.db_url, clock=self.clock)
        self.loader = loader or ActionLoader(actions_dirs)
        self.safety_interval = safety_interval
        self.listen = listen
        self.state = definition.initial_state
        self.step = 0
        self.entered_at = self.clock.now()
        self.context: dict[str, Any] = {**definition.context_defaults, **(initial_context or {})}
        self.context["machine_name"] = machine_name
        self.context["current_state"] = self.state
        self.runtime = Runtime(
            machine_name=machine_name,
            store=self.store,
            clock=self.clock,
            definition=definition,
            owner=f"{machine_name}@{socket.gethostname()}:{os.getpid()}",
            db_url=self.db_url,
            config_path=Path(definition.source),
            actions_dirs=self.loader.actions_dirs,
            lease_seconds=lease_seconds,
            backoff_base=backoff_base,
        )
        self.actions = {
            state: [self._bind(self.loader.create(spec)) for spec in specs]
            for state, specs in definition.entry_actions.items()
        }
        self._wake = asyncio.Event()
        self._stopping = False
        self._changed = asyncio.Condition()
        self._current: asyncio.Task[str | None] | None = None
        self._job_error = False
        self._lease_lost = False
        self._waiters = 0

    def _bind(self, action: BaseAction) -> BaseAction:
        action.runtime = self.runtime
        return action

    # control

    def wake(self) -> None:
        """Make a parked machine look again (a job, event or timer may be waiting)."""
        self._wake.set()

    def stop(self) -> None:
        """Stop after the current action; a running action is cancelled (bash children are
        killed) and a held job goes back to the queue."""
        self._stopping = True
        if self._current is not None and not self._current.done():
            self._current.cancel()
        self._wake.set()

    def on_doorbell(self, message: dict[str, Any]) -> None:
        """Handle a control-socket message: wake for events and relevant jobs, stop on request."""
        kind = message.get("kind")
        if kind == "job":
            types = self.definition.job_types
            if types and message.get("job_type") not in types:
                return
        elif kind == "control" and message.get("op") == "stop":
            self.stop()
            return
        self.wake()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until `predicate()` holds after some step; for tests of machines in-process."""
        if predicate():
            return
        self._waiters += 1
        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(predicate)
        finally:
            self._waiters -= 1

    async def wait_for_state(self, state: str, timeout: float = 5.0) -> None:
        await self.wait_for(lambda: self.state == state, timeout)

    # the loop

    async def run(self) -> int:
        """Run until a final state or stop(); returns the exit code."""
        doorbell = await self._start_doorbell() if self.listen else None
        heartbeat = asyncio.create_task(self._heartbeat())
        status = "stopped"
        try:
            self._register()
            status = await self._loop()
            return 0
        except StateMachineError:
            status = "crashed"
            raise
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            self._release_job()
            with contextlib.suppress(StateMachineError):
                self.store.machine_stopped(self.machine_name, status, self.clock.now())
            if doorbell is not None:
                doorbell.close()

    async def _start_doorbell(self) -> Any:
        from statemachine_engine.transport import Doorbell

        doorbell = Doorbell(self.machine_name, self.on_doorbell)
        await doorbell.start()
        return doorbell

    def _register(self) -> None:
        released = self.store.release_jobs(self.runtime.owner.rsplit(":", 1)[0] + ":")
        if released:
            logger.info("[%s] released %d job(s) left by a previous run", self.machine_name,
                        released)
        status = self.store.register_machine(
            self.machine_name, self.state, pid=os.getpid(), hostname=socket.gethostname(),
            config_path=self.definition.source, definition_name=self.definition.name,
            definition_hash=self.definition.digest, definition_text=self.definition.text,
            at=self.clock.now(),
        )
        self.step = status.step
        logger.info("[%s] started in state %s", self.machine_name, self.state)

    async def _loop(self) -> str:
        entering, idle = True, False
        while not self._stopping:
            if entering:
                self._wake.clear()
                if self.definition.is_final(self.state):
                    await self._run_actions()
                    self._commit(None, None)
                    logger.info("[%s] reached final state %s", self.machine_name, self.state)
                    return "finished"
                if await self._dispatch_pending_event(only_handled=True):
                    continue
                fired = await self._run_actions()
                if self._stopping:
                    break
                entering, idle = False, False
                if fired is not None:
                    idle = is_idle(self.definition, fired, self.state)
                    if not idle:
                        self._take(fired)
                        entering = True
                        continue
                self._flush()
                continue
            if not idle:
                self._wake.clear()
            if await self._dispatch_pending_event(only_handled=False):
                entering = True
                continue
            due = next_timeout(self.definition, self.state, self.entered_at)
            if due is not None and due[0] <= self.clock.now():
                self._take(due[1])
                entering = True
                continue
            await self._park(due[0] if due else None)
            entering = idle
        return "stopped"

    async def _park(self, timer_due: float | None) -> None:
        """Wait for a doorbell, the timer or the safety interval, whichever comes first."""
        delay = self.safety_interval
        if timer_due is not None:
            delay = min(delay, max(0.0, timer_due - self.clock.now()))
        waiter = asyncio.ensure_future(self._wake.wait())
        sleeper = asyncio.ensure_future(self.clock.sleep(delay))
        try:
            await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (waiter, sleeper):
                task.cancel()

    async def _dispatch_pending_event(self, *, only_handled: bool) -> bool:
        """Handle the oldest event addressed to this machine. Returns True if it fired a
        transition. An event with no transition here is left for later when only_handled,
        else recorded as unhandled."""
        event = self.store.next_event(self.machine_name)
        if event is None:
            return False
        transition = decide(self.definition, self.state, event.event_type)
        if transition is None:
            if not only_handled:
                self._unhandled(event)
            return False
        self.runtime.consume(event, self.context)
        self._take(transition)
        return True

    def _unhandled(self, event: MachineEvent) -> None:
        logger.warning("[%s] event %s has no transition from %s; recorded as unhandled",
                       self.machine_name, event.event_type, self.state)
        self.store.commit_step(Step(
            machine_name=self.machine_name, at=self.clock.now(), step=self.step,
            from_state=self.state, to_state=None, event=event.event_type,
            consumed_event_id=event.id, consumed_event_status="unhandled",
            realtime=[("unhandled_event", {"machine_name": self.machine_name,
                                           "state": self.state, "event": event.event_type,
                                           "event_id": event.id})],
        ))

    async def _run_actions(self) -> Transition | None:
        """Run the entry actions of the current state; the first returned event with a
        transition wins. An error with no transition stops the list."""
        self.context["current_state"] = self.state
        self.context["step_key"] = f"{self.machine_name}:{self.step}"
        for action in self.actions.get(self.state, ()):
            event = await self._execute(action)
            if event is None or self._stopping:
                if self._stopping:
                    return None
                continue
            if event == ERROR_EVENT:
                self._on_error()
            transition = decide(self.definition, self.state, event)
            if transition is not None:
                return transition
            if event == ERROR_EVENT:
                return None
            logger.debug("[%s] %s returned %s: no transition from %s", self.machine_name,
                         type(action).__name__, event, self.state)
        return None

    async def _execute(self, action: BaseAction) -> str | None:
        self._current = asyncio.ensure_future(action.execute(self.context))
        try:
            result = await self._current
        except asyncio.CancelledError:
            if self._stopping:
                return None
            if self._lease_lost:
                self._lease_lost = False
                self.context["last_error"] = "lease lost; the job was given to another worker"
                self.context["last_error_action"] = type(action).__name__
                return ERROR_EVENT
            raise
        except Exception as exc:
            message = str(exc) or type(exc).__name__
            logger.error("[%s] action %s failed in %s: %s", self.machine_name,
                         type(action).__name__, self.state, message)
            self.context["last_error"] = message
            self.context["last_error_action"] = type(action).__name__
            return ERROR_EVENT
        finally:
            self._current = None
        return None if result is None else str(result)

    def _on_error(self) -> None:
        """An error fails the attempt of the held job (unless an action already decided)."""
        error = str(self.context.get("last_error") or "error")
        self.runtime.realtime.append(("error", {"machine_name": self.machine_name,
                                                "state": self.state, "error": error}))
        if self.runtime.job is not None and self.runtime.job_ack is None:
            self.runtime.fail_job(error)
            self._job_error = True

    def _take(self, transition: Transition) -> None:
        self._commit(transition.event, transition.target)

    def _flush(self) -> None:
        """Commit what the actions left (events to send, job ack) without a state change."""
        runtime = self.runtime
        if runtime.job_ack or runtime.outbox or runtime.consumed_event or runtime.realtime:
            self._commit(None, None)

    def _commit(self, event: str | None, target: str | None) -> None:
        runtime = self.runtime
        if (runtime.job is not None and runtime.job_ack is None and not self._job_error
                and target is not None and target == runtime.job_state):
            runtime.complete_job(self.context.get("result"))
        ack, outbox, consumed, realtime = runtime.take_pending()
        now = self.clock.now()
        previous = self.state
        if target is not None:
            self.step += 1
        step = Step(
            machine_name=self.machine_name, at=now, step=self.step, from_state=previous,
            to_state=target, event=event,
            consumed_event_id=consumed.id if consumed else None,
            consumed_event_status="processed" if target is not None else "unhandled",
            job_id=runtime.job.job_id if runtime.job else None,
            job_ack=ack, outbox=outbox, realtime=realtime,
        )
        if not self.store.commit_step(step):
            logger.warning("[%s] lease lost on job %s; its result is discarded",
                           self.machine_name, ack.job_id if ack else "?")
            self._drop_job()
        elif ack is not None:
            self._drop_job()
        if target is not None:
            self.state = target
            if target != previous or event not in self.definition.idle_events:
                self.entered_at = now
            self.context["current_state"] = target
            logger.info("[%s] %s --%s--> %s", self.machine_name, previous, event, target)
        self._ring(outbox)
        self._notify()

    def _drop_job(self) -> None:
        self.runtime.job = None
        self.runtime.job_state = None
        self._job_error = False
        for key in ("current_job", "job_id", "job_type", "data"):
            self.context.pop(key, None)

    def _ring(self, outbox: Iterable[Any]) -> None:
        targets = {out.target_machine for out in outbox}
        if not targets:
            return
        from statemachine_engine.transport import ring

        for target in targets:
            if target == self.machine_name:
                self.wake()
            else:
                ring(target, {"kind": "event"})

    def _notify(self) -> None:
        if not self._waiters:
            return

        async def notify() -> None:
            async with self._changed:
                self._changed.notify_all()

        with contextlib.suppress(RuntimeError):
            asyncio.get_running_loop().create_task(notify())

    def _release_job(self) -> None:
        job = self.runtime.job
        if job is None:
            return
        with contextlib.suppress(StateMachineError):
            if self.store.release_job(job.job_id, self.runtime.owner):
                logger.info("[%s] released job %s back to the queue", self.machine_name,
                            job.job_id)
        self._drop_job()

    async def _heartbeat(self) -> None:
        """Renew the lease of the held job; on loss, cancel the running action."""
        period = max(self.runtime.lease_seconds / 3, 0.05)
        while True:
            await self.clock.sleep(period)
            job = self.runtime.job
            if job is None:
                continue
            try:
                alive = self.store.heartbeat(job.job_id, self.runtime.owner,
                                             self.runtime.lease_seconds)
            except StateMachineError as exc:
                logger.warning("[%s] heartbeat failed: %s", self.machine_name, exc)
                continue
            if not alive and self.runtime.job is job:
                logger.warning("[%s] lease lost on job %s; stopping its action",
                               self.machine_name, job.job_id)
                self._drop_job()
                if self._current is not None:
                    self._lease_lost = True
                    self._current.cancel()

    def snapshot(self) -> dict[str, Any]:
        """Where the machine is, for logs and tests."""
        return {"machine_name": self.machine_name, "state": self.state, "step": self.step,
                "since": iso(self.entered_at),
                "job_id": self.runtime.job.job_id if self.runtime.job else None}
