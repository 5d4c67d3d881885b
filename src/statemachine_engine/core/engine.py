"""StateMachineEngine: the runtime loop around the pure transition function."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from statemachine_engine.actions.base import BaseAction, Failure
from statemachine_engine.actions.params import failure_events
from statemachine_engine.clock import Clock, SystemClock, iso
from statemachine_engine.config.model import MachineDefinition, Position, Transition
from statemachine_engine.core import logfields, tracing
from statemachine_engine.core.deadlines import Deadlines, Entry
from statemachine_engine.core.failurelog import failure_summary
from statemachine_engine.core.groupcommit import GroupCommit
from statemachine_engine.core.heartbeat import LeaseKeeper, StallWatch
from statemachine_engine.core.jobpolicy import JobPolicy
from statemachine_engine.core.loader import ActionLoader
from statemachine_engine.core.resume import Resume, late_by
from statemachine_engine.core.runtime import Runtime, owner_of
from statemachine_engine.core.scheduler import Ticker
from statemachine_engine.core.storable import clipped
from statemachine_engine.core.transitions import (
    ERROR_EVENT,
    START_EVENT,
    claimed_job_types,
    decide,
    is_idle,
    next_timeout,
)
from statemachine_engine.core.waiting import Conditions, Parking
from statemachine_engine.database.connect import default_url, open_store, sqlite_path
from statemachine_engine.database.liveness import process_start
from statemachine_engine.database.records import (
    ActionRun,
    Job,
    JobAck,
    MachineEvent,
    OutgoingEvent,
    Step,
)
from statemachine_engine.database.store import Store
from statemachine_engine.database.wakeups import ListeningStore, listen_for_wakeups
from statemachine_engine.errors import StateMachineError, StopTimeout, StoreError
from statemachine_engine.transport import UI_DOORBELL, Doorbell, ring

logger = logging.getLogger(__name__)

EVENT_DOORBELL = {"kind": "event"}
_NOWHERE = Position("-", 0, 0)

DEFAULT_SAFETY_INTERVAL = 5.0
DEFAULT_LEASE_SECONDS = 30.0
#: After a stop, calls waiting for the database (a lock, a reconnect) give up this long after
#: it: SIGTERM acts within 2 s whatever the database is doing (DESIGN 13.9).
STOP_BUDGET = 1.0


class StateMachineEngine:
    """Runs one machine: enters states, runs their actions, fires transitions, parks when
    there is nothing to do, and commits every step (state, job ack, events) in one
    transaction. `run()` returns the process exit code (0 at a final state or on stop)."""

    def __new__(cls, *args: Any, **kwargs: Any) -> StateMachineEngine:
        """Called as in 1.0, without a definition (`StateMachineEngine(machine_name=...)`),
        it builds `compat.engine.ReleasedEngine`, which loads its file in `load_config`."""
        first = args[0] if args else kwargs.get("definition")
        if cls is StateMachineEngine and not isinstance(first, MachineDefinition):
            from statemachine_engine.compat.engine import ReleasedEngine

            return super().__new__(ReleasedEngine)
        return super().__new__(cls)

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
        heartbeat: float | None = None,
        jitter: float = 0.0,
        listen: bool = True,
        hold_job: str | None = None,
        report_to: str | None = None,
        tracebacks: bool = False,
    ) -> None:
        self.definition = definition
        self.machine_name = machine_name
        self.clock: Clock = clock or SystemClock()
        self.db_url = db_url or (store.url if store is not None else default_url())
        self.store: Store = store or open_store(self.db_url, clock=self.clock)
        self.loader = loader or ActionLoader(actions_dirs)
        self.listen = listen
        self.state = definition.initial_state
        self.step = 0
        self.entered_at = self.clock.now()
        self.context: dict[str, Any] = {**definition.context_defaults, **(initial_context or {})}
        self.context["machine_name"] = machine_name
        self.context["current_state"] = self.state
        self.commits = GroupCommit(self.store, on_flushed=self._flushed)
        self.runtime = Runtime(
            machine_name=machine_name,
            store=self.store,
            clock=self.clock,
            definition=definition,
            owner=owner_of(machine_name),
            db_url=self.db_url,
            config_path=Path(definition.source),
            policy=JobPolicy(
                job_options=definition.job_options,
                lease_seconds=lease_seconds,
                backoff_base=backoff_base,
                heartbeat_seconds=heartbeat,
                jitter=jitter,
            ),
            commits=self.commits,
            actions_dirs=self.loader.actions_dirs,
            safety_interval=safety_interval,
            report_to=report_to,
        )
        self._hold_job = hold_job
        self._tracebacks = tracebacks
        self._failures: dict[BaseAction, frozenset[str]] = {}
        self.actions = {
            state: [self._bind(self.loader.create(spec), spec.params) for spec in specs]
            for state, specs in definition.entry_actions.items()
        }
        self._job_types = claimed_job_types(definition)
        self._conditions = Conditions()
        self._parking = Parking(self.clock, safety_interval, self._conditions.notify)
        self.runtime.retry_due = self._parking.retry_due
        self._ticker = Ticker(self.store, self.clock, safety_interval)
        self._deadlines = Deadlines(definition, machine_name, self.clock, self._record_alert)
        # Events arrive with a doorbell (or a wake-up); without one since the last empty read
        # the store is read again only after the safety interval, as a parked machine would.
        self._events_maybe = True
        self._events_read_at = self.clock.now()
        self._stopping = False
        self._give_up_at: float | None = None
        self._event_loop: asyncio.AbstractEventLoop | None = None
        self._keeper: LeaseKeeper | None = None
        # (monotonic start, state, action) of the latest actions, to name a loop stall.
        self._started: deque[tuple[float, str, str]] = deque(maxlen=16)
        self._stalls = StallWatch(machine_name, self._where)
        self._current: asyncio.Future[str | None] | None = None
        # Loop guard: steps since the machine last waited or took outside input, the recent
        # transitions (to name a cycle) and the progress counter seen last.
        self._instant_steps = 0
        #: When the current state's actions last started and ended (clock time).
        self._actions_started_at = 0.0
        self._actions_ended_at = 0.0
        self._recent: deque[tuple[str, str, str]] = deque(maxlen=64)
        self._progress = 0
        self._warned: set[tuple[str, int, str]] = set()
        #: `options.restart: resume`: snapshots with every state entry, restored at start.
        self._resume = Resume(self) if definition.restart == "resume" else None
        self._resumed = False

    def _bind(self, action: BaseAction, params: Mapping[str, Any]) -> BaseAction:
        action.runtime = self.runtime
        declared = failure_events(type(action).declared(), params)
        self._failures[action] = declared | self.definition.failure_events
        return action

    @property
    def last_event(self) -> str | None:
        """The event of the machine's latest transition in this run (for log fields)."""
        return self._recent[-1][1] if self._recent else None

    @property
    def parked(self) -> bool:
        """True while the machine waits for a doorbell, a timer or the safety re-check."""
        return self._parking.parked

    @property
    def settled(self) -> bool:
        """Parked with nothing waking it: the machine will do nothing until something arrives
        (what a test harness waits for)."""
        return self._parking.settled

    def wake(self) -> None:
        """Make a parked machine look again (a job, event or timer may be waiting)."""
        self._events_maybe = True
        self._parking.ring()

    def stop(self) -> None:
        """Stop after the current action; a running action is cancelled (bash children are
        killed) and a held job goes back to the queue without counting the attempt. Store
        calls that wait for the database give up STOP_BUDGET seconds from now; cleanup
        writes not done by then are skipped (one WARNING; the lease then expires)."""
        self._give_up_waiting()
        if not self._stopping:
            logger.info("[%s] stopping in state %s", self.machine_name, self.state)
        self._stopping = True
        if self._current is not None and not self._current.done():
            self._current.cancel()
        self.wake()

    def stop_soon(self) -> None:
        """stop() for a signal handler or another thread. It runs while the loop is blocked
        (in a store call waiting for a lock or a reconnect): it only sets the stop deadline,
        at which that call gives up, and schedules stop() on the loop."""
        self._give_up_waiting()
        loop = self._event_loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.stop)

    def _give_up_waiting(self) -> None:
        if self._give_up_at is not None:
            return
        self._give_up_at = at = time.monotonic() + STOP_BUDGET
        self.store.give_up_waiting(at)
        if self._keeper is not None:
            self._keeper.give_up_waiting(at)

    def on_doorbell(self, message: dict[str, Any]) -> None:
        """Handle a control-socket message: wake for events and for jobs this machine can
        claim, stop on request."""
        kind = message.get("kind")
        if kind == "job_done":
            self.runtime.job_news.set()
        elif kind == "job":
            if self._job_types is not None and message.get("job_type") not in self._job_types:
                return
        elif kind == "control" and message.get("op") == "stop":
            self.stop()
            return
        self.wake()

    def make_visible(self) -> None:
        """Commit the staged steps (and give back the jobs claimed ahead) so the store, other
        machines and the UI see them: before anything that takes time or is seen outside the
        process (see GroupCommit). A StoreError leaves nothing staged."""
        self.commits.flush()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until `predicate()` holds; it is checked after every step and park, so a
        state passed through quickly is still seen. Raises TimeoutError naming the state."""
        await self._conditions.wait(predicate, timeout, self.snapshot)

    async def wait_for_state(self, state: str, timeout: float = 5.0) -> None:
        """Wait until the machine has entered `state`."""
        await self.wait_for(lambda: self.state == state, timeout)

    async def wait_parked(self, timeout: float = 5.0) -> None:
        """Wait until the machine waits for a doorbell, a timer or the safety re-check."""
        await self.wait_for(lambda: self.parked, timeout)

    async def run(self) -> int:
        """Run until a final state or stop(); returns the exit code. A database that
        fails while running (disk full, read-only, locked too long) stops the machine with
        one error line and exit code 1; the failed step was rolled back, nothing half-done.

        Threads: store calls of the machine run here, on the loop, and may block it; the
        held job's lease is renewed by a LeaseKeeper thread on its own connection, and
        stop_soon() (signals) makes a blocked store call give up at the stop deadline."""
        self._event_loop = loop = asyncio.get_running_loop()
        fields = logfields.bind(self)
        doorbell = None
        wakeups = None
        if self.listen:
            doorbell = Doorbell(self.machine_name, self.on_doorbell)
            await doorbell.start()
            # Across hosts (PostgreSQL) the store itself pushes wake-ups, from its own thread.
            wakeups = listen_for_wakeups(
                self.store,
                self.machine_name,
                lambda message: loop.call_soon_threadsafe(self.on_doorbell, message),
            )
        lease = self._keep_lease(loop)
        stalls = asyncio.create_task(self._stalls.run())
        status = "crashed"
        skipped: list[str] = []
        reason = ""
        registered = False
        try:
            try:
                self._register()
                registered = True
                self._boot_start()
                status = await self._loop()
            except StopTimeout as exc:  # only after stop(): the step in progress is not done
                status = "stopped"
                skipped.append("the step in progress")
                reason = str(exc)
                return 0
            except StoreError as exc:
                if not registered:
                    raise
                logger.error("[%s] stopping in state %s: %s", self.machine_name, self.state, exc)
                return 1
            return 0
        except asyncio.CancelledError:
            status = "stopped"
            raise
        finally:
            stalls.cancel()
            if lease is not None:
                lease.cancel()
                await asyncio.wait({lease})
            if self._keeper is not None:
                self._keeper.close()
            self._clean_up(status, skipped, reason)
            if doorbell is not None:
                doorbell.close()
            if wakeups is not None:
                wakeups.close()
            self._conditions.close(f"machine {self.machine_name} {status} in {self.state}")
            self.store.give_up_waiting(None)  # a store passed in may serve a later run
            logfields.unbind(fields)

    def _keep_lease(self, loop: asyncio.AbstractEventLoop) -> asyncio.Task[None] | None:
        """Start renewing held leases: a LeaseKeeper thread on a connection of its own, or,
        with an injected clock (tests drive leases in virtual time) or an in-memory database
        (a second connection would see another database), a task on the loop."""
        url = self.db_url
        memory = not url.startswith(("postgresql:", "postgres:")) and (
            sqlite_path(url) == ":memory:"
        )
        if isinstance(self.clock, SystemClock) and not memory:
            # PostgreSQL: renew on the machine's own store (its connection is thread-safe),
            # so a machine process holds one server connection; SQLite: a connection of
            # its own, so a renewal never waits behind the loop's busy handler.
            shared = self.store if isinstance(self.store, ListeningStore) else None
            self._keeper = LeaseKeeper(
                self.runtime,
                (lambda: shared)
                if shared is not None
                else (lambda: open_store(url, clock=self.clock, create=False)),
                self._lease_lost,
                loop,
                owns_store=shared is None,
            )
            if self._give_up_at is not None:
                self._keeper.give_up_waiting(self._give_up_at)
            self._keeper.start()
            return None
        return asyncio.create_task(self.runtime.keep_lease(self._lease_lost))

    def _clean_up(self, status: str, skipped: list[str], reason: str) -> None:
        """Commit what is staged, release the held job and record the stop. After a stop,
        writes the database cannot take before the stop deadline are skipped with one
        WARNING: the job's lease then expires and it is retried, as after a crash."""
        try:
            self.make_visible()
        except StopTimeout as exc:
            reason = reason or str(exc)
            skipped.append("committing the last steps")
        except StateMachineError:
            pass
        held = self.runtime.job
        adopted = held is not None and held.job_id == self.runtime.adopted
        if self._resume is not None and self._resume.keep_at_stop():
            held = None  # kept for the next start, which resumes with it
        elif not self.runtime.release_job(self.context) and held is not None:
            skipped.append(f"releasing job {held.job_id}")
        else:
            held = None
        if adopted:
            self._report_done()
        # A crash (exit 1) leaves the event in hand for the next start to count; a resume
        # machine goes on handling it there.
        if status == "stopped" and self._resume is None:
            self.runtime.release_event()
        try:
            self.store.machine_stopped(self.machine_name, status, self.clock.now())
        except StopTimeout as exc:
            reason = reason or str(exc)
            skipped.append("marking the machine stopped")
        except StateMachineError:
            pass
        else:
            self._ring_ui()
        if not skipped:
            return
        text = f"skipped {', '.join(skipped)}"
        if held is not None:
            lease = self.runtime.policy.lease_for(held.job_type)
            text += (
                f"; job {held.job_id} is retried when its lease expires (within {lease:g} s),"
                " as after a crash"
            )
        logger.warning(
            "[%s] stopped without waiting for the database (%s): %s",
            self.machine_name,
            reason,
            text,
        )

    def _where(self, since: float, until: float) -> str:
        """What held the loop between monotonic times `since` (it was free then) and
        `until`: of the actions started in between, the one that ran longest before the
        next one started (a blocking action holds everything); else the current state."""
        started = [entry for entry in self._started if entry[0] >= since]
        if not started:
            return f"(state {self.state})"
        ends = [entry[0] for entry in started[1:]] + [until]
        _, state, action = max(zip(started, ends, strict=True), key=lambda p: p[1] - p[0][0])[0]
        return f"(state {state}, action {action})"

    def _register(self) -> None:
        previous = self.store.get_machine(self.machine_name)
        resumed = self._resume.restore(previous) if self._resume is not None else None
        status = self.store.register_machine(
            self.machine_name,
            self.state,
            pid=os.getpid(),
            hostname=socket.gethostname(),
            pid_start=process_start(os.getpid()),
            config_path=self.definition.source,
            definition_name=self.definition.name,
            definition_hash=self.definition.digest,
            definition_text=self.definition.text,
            at=self.clock.now(),
            entered_at=None if resumed is None else self.entered_at,
            snapshot=None if self._resume is None else self._resume.at_start(previous, resumed),
        )
        if self._hold_job is not None:  # before recovery: the handed job carries our pid
            self.runtime.adopt_job(self._hold_job, self.context)
        if resumed is not None and self._resume is not None:
            self._resume.rehold(resumed)  # before recovery, which would fail the job
        self.runtime.recover_jobs(previous)
        self.runtime.recover_events(previous)
        # A restart skips one step number, so no step key of the previous run (whose last
        # step may never have committed) is handed out again; a resumed state keeps the
        # number (and key) of the committed step that entered it, for the redo.
        self.step = status.step + (1 if previous is not None else 0)
        if resumed is not None:
            self.step = resumed.step
        self._resumed = resumed is not None
        self._ring_ui()
        logger.info("[%s] started in state %s", self.machine_name, self.state)

    def _boot_start(self) -> None:
        """As in the released package, a machine fires `start` when it boots: a transition
        on it from the initial state is taken before that state's actions run (not when it
        resumes in its last state)."""
        if self._resumed:
            return
        transition = decide(self.definition, self.state, START_EVENT)
        if transition is None:
            return
        logger.info("[%s] start: %s -> %s", self.machine_name, self.state, transition.target)
        self._commit(START_EVENT, transition.target)

    async def _loop(self) -> str:
        entering, idle, parked = True, False, False
        while not self._stopping:
            if entering:
                if not parked:
                    await asyncio.sleep(0)  # machines whose actions never await still yield
                parked = False
                self._parking.clear()
                if self._instant_steps > self.definition.max_instant_steps:
                    entering = self._loop_detected()
                    continue
                if self.definition.is_final(self.state):
                    await self._run_actions()
                    if self._stopping:
                        break
                    self._unfinished_at_final()
                    self._stage_leftovers()
                    self.make_visible()
                    logger.info("[%s] reached final state %s", self.machine_name, self.state)
                    return "finished"
                if self._dispatch_event(at_entry=True):
                    continue
                self._actions_started_at = self.clock.now()
                transition, idle = await self._run_actions()
                self._actions_ended_at = self.clock.now()
                if self._stopping:
                    break
                if transition is not None and not idle:
                    self._commit(transition.event, transition.target)
                    continue
                self._stage_leftovers()
                entering = False
                continue
            if not idle:
                self._parking.clear()
            if self._dispatch_event(at_entry=False):
                entering = True
                continue
            due = next_timeout(self.definition, self.state, self.entered_at)
            if self._stuck(None if due is None else due[0]):
                entering = True
                continue
            if due is not None and due[0] <= self.clock.now():
                if due[0] - self.entered_at > self._actions_ended_at - self._actions_started_at:
                    # The actions took less than the timer: it came due while the engine
                    # itself worked (a busy host), so it did wait; only actions outlasting
                    # their state's timer make a timer loop.
                    self._instant_steps = 0
                self.context["late_by"] = late_by(self, due[0], due[1])
                self._commit(due[1].event, due[1].target)
                entering = True
                continue
            self.make_visible()
            self._instant_steps = 0
            tick = self._ticker.poll()  # fires due schedule ticks; parks no longer than the next
            wake = [t for t in (None if due is None else due[0], tick) if t is not None]
            if (dwell_at := self._deadlines.wake_at(self._entry())) is not None:
                wake.append(dwell_at)
            self._stalls.parked()
            await self._parking.park(min(wake, default=None))
            self._stalls.unparked()
            self._events_maybe = True
            entering, parked = idle, True
        return "stopped"

    def _dispatch_event(self, *, at_entry: bool) -> bool:
        """Fire the oldest pending event addressed to this machine if it has a transition
        here. At state entry anything else is left for later; once the actions have run
        out, events without a transition are recorded as unhandled, in order."""
        while (event := self._next_event()) is not None:
            transition = decide(self.definition, self.state, event.event_type)
            if transition is not None:
                self.runtime.consume(event, self.context)
                self._instant_steps = 0  # outside input: not a loop
                self._commit(transition.event, transition.target)
                return True
            if at_entry:
                return False
            self._unhandled(event)
        return False

    def _next_event(self) -> MachineEvent | None:
        """The oldest pending event for this machine, if one may have arrived since the last
        empty read (a doorbell, a wake-up, a park, or the safety interval has passed)."""
        if self.commits.touches_events_of(self.machine_name):
            self.make_visible()  # the store must see what staged steps consumed or sent us
        now = self.clock.now()
        if not self._events_maybe and now - self._events_read_at < self._parking.safety_interval:
            return None
        event = self.store.next_event(self.machine_name)
        if event is None:
            self._events_maybe = False
            self._events_read_at = now
        return event

    def _unhandled(self, event: MachineEvent) -> None:
        logger.warning(
            "[%s] event %s has no transition from %s; recorded as unhandled",
            self.machine_name,
            event.event_type,
            self.state,
        )
        self.runtime.unhandled(event, self.state)
        self._commit(None, None)

    async def _run_actions(self) -> tuple[Transition | None, bool]:
        """Run the entry actions of the current state; the first returned event with a
        transition wins. A failure fails the held job's attempt when it fires a transition;
        without one it sends the machine to its `on_error` state or back to the state that
        claimed the job (or, holding no job, ends the list). Also says whether the state is
        idle: an idle self-transition fired, or an action said there was nothing to do."""
        self.context["current_state"] = self.state
        self.context["step_key"] = f"{self.machine_name}:{self.step}"
        idle = False
        for index, action in enumerate(self.actions.get(self.state, ())):
            job = self.runtime.job
            started = self.clock.now()
            with tracing.action(self.machine_name, self.state, type(action).__name__, job) as span:
                event = await self._execute(action)
                span.outcome(event)
            kind = self.definition.entry_actions[self.state][index].type
            self.runtime.action_ran(self.state, kind, job, started)
            if self._stopping:
                return None, False
            if event is None:
                continue
            transition = decide(self.definition, self.state, event)
            reason = self._failure_reason(action, event)
            if reason is not None:
                return self._failed_outcome(action, event, reason, transition), False
            if transition is not None:
                return transition, is_idle(self.definition, transition, self.state)
            if event in self.definition.idle_events:
                idle = True
                continue
            self._no_transition(index, action, event)
        return None, idle

    def _failure_reason(self, action: BaseAction, event: str) -> str | None:
        """The reason when `event` is a failure outcome of `action`, else None."""
        if isinstance(event, Failure):
            return event.reason
        if event in self._failures.get(action, ()) or event == ERROR_EVENT:
            text = self.context.get("last_error") if event == ERROR_EVENT else None
            return str(text or f"{type(action).__name__} returned failure event '{event}'")
        return None

    def _failed_outcome(
        self, action: BaseAction, event: str, reason: str, transition: Transition | None
    ) -> Transition | None:
        """Apply a failure (DESIGN §13.1-13.2): fail the held job's attempt, raise the UI
        alert, and choose where the machine goes: the failure's transition, else
        `options.on_error`, else back to the state that claimed the job, else nowhere."""
        name = type(action).__name__
        self.context["last_error"] = reason
        self.context["last_error_action"] = name
        if transition is not None:
            self._fail_attempt(reason)
            logger.warning(
                "[%s] %s failed in %s (%s): %s", self.machine_name, name, self.state, event, reason
            )
            return transition
        target = self.definition.on_error_target(self.state)
        if target is None and self.runtime.job_state is not None and self.runtime.job:
            target = self.runtime.job_state
        if target == self.state and self.definition.on_error_target(self.state) == self.state:
            target = None  # a failure inside the on_error state itself stays there
        self._fail_attempt(reason, stays=target is None)
        where = f"going to {target}" if target is not None else "staying (no job held)"
        logger.error(
            "[%s] %s failed in %s with no transition on '%s': %s; %s",
            self.machine_name,
            name,
            self.state,
            event,
            reason,
            where,
        )
        if target is None:
            return None
        pos = self.definition.state_pos.get(self.state, _NOWHERE)
        return Transition(self.state, target, str(event), pos)

    def _fail_attempt(self, reason: str, *, stays: bool = False) -> None:
        """A failure: alert the UI (`stays`: the machine stays in this state, which the UI
        marks until it moves on) and fail the held job's attempt (unless an action of this
        step already decided its outcome)."""
        alert: dict[str, Any] = {
            "machine_name": self.machine_name,
            "state": self.state,
            "error": clipped(reason),
        }
        if stays:
            alert["stays"] = True
        self.runtime.pending.realtime.append(("error", alert))
        if self.runtime.job is not None and self.runtime.pending.job_ack is None:
            self.runtime.fail_job(reason)

    def _no_transition(self, index: int, action: BaseAction, event: str) -> None:
        """An action's event has no transition here: a WARNING the first time this action
        does it (the machine goes on with the next action, or waits), DEBUG after that."""
        key = (self.state, index, event)
        level = logging.DEBUG if key in self._warned else logging.WARNING
        self._warned.add(key)
        logger.log(
            level,
            "[%s] %s in state '%s' returned '%s', which has no transition from '%s'",
            self.machine_name,
            type(action).__name__,
            self.state,
            event,
            self.state,
        )

    def _loop_detected(self) -> bool:
        """More than `max_instant_steps` steps without waiting: a `loop_detected` failure
        naming the cycle. Returns whether the machine enters a state (on_error, or the
        claiming state with the attempt failed) rather than waiting where it is."""
        cycle = self._cycle()
        reason = (
            f"loop_detected: more than {self.definition.max_instant_steps} steps without"
            f" waiting, cycle {cycle} (raise options.max_instant_steps if this is intended)"
        )
        self.context["last_error"] = reason
        self._instant_steps = 0
        target = self.definition.on_error_target(self.state) or self.runtime.job_state
        self._fail_attempt(reason, stays=target is None)
        logger.error(
            "[%s] %s; %s",
            self.machine_name,
            reason,
            f"going to {target}" if target is not None else "waiting in " + self.state,
        )
        if target is None:
            self._stage_leftovers()
            return False
        self._commit("loop_detected", target)
        self._instant_steps = 0
        return True

    def _cycle(self) -> str:
        """The most recent cycle of transitions, as `a --e--> b --f--> a`."""
        recent = list(self._recent)
        if not recent:
            return self.state
        end = recent[-1][2]
        start = next((i for i in range(len(recent) - 1, -1, -1) if recent[i][0] == end), 0)
        text = recent[start][0]
        for _, event, target in recent[start:]:
            text += f" --{event}--> {target}"
        return text

    def _unfinished_at_final(self) -> None:
        """A job claimed by id or handed over that is still held at a final state was never
        completed: its attempt fails (a job claimed from the queue is released instead)."""
        runtime = self.runtime
        if runtime.job is not None and runtime.job_by_id and runtime.pending.job_ack is None:
            self._fail_attempt(f"machine reached final state {self.state} without completing it")

    async def _execute(self, action: BaseAction) -> str | None:
        """Run one action; an exception (or a cancellation that is not a stop) becomes the
        action's `error` event (a failure) with the message in `last_error`. Runs the action
        on the loop: an action that blocks it delays timers and stop, not the lease."""
        self._started.append((time.monotonic(), self.state, type(action).__name__))
        if action.instant:
            try:
                result = await action.execute(self.context)
            except StoreError:
                raise  # a claim's group commit failed: the staged steps rolled back
            except Exception as exc:
                return self._raised(action, exc)
            if self.runtime.progress != self._progress:
                self._progress = self.runtime.progress
                self._instant_steps = 0  # a claimed job or a taken event is outside input
            return _event_name(result)
        self.make_visible()
        self._instant_steps = 0
        self._current = asyncio.ensure_future(action.execute(self.context))
        guard = self._deadlines.guard(self._current, self._entry())
        try:
            result = await self._current
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            if self._stopping:
                return None
            if guard is not None and (outcome := guard.outcome(type(action).__name__)):
                self._failed(action, outcome.reason)
                return outcome  # a timer or dwell limit fell due: its transition is taken
            if self.runtime.lease_lost:
                return self._failed(action, "lease lost: the job was given to another worker")
            return self._failed(action, "action was cancelled")
        except Exception as exc:
            return self._raised(action, exc)
        finally:
            self._current = None
            if guard is not None:
                guard.close()
        job = self.runtime.job
        if job is not None and self._keeper is not None:
            # The lease thread and the action's end race (the on-loop heartbeat used to run
            # first): a lease found lost as the action ended, or not renewed for a whole
            # lease (the process was stopped) and now taken, makes the result stale.
            known = self.runtime.lease_lost
            if known or not self.runtime.confirm_lease():
                if not known:
                    self._lease_lost(job)
                return self._failed(action, "lease lost: the job was given to another worker")
        return _event_name(result)

    def _entry(self) -> Entry:
        return Entry(self.state, self.step, self.entered_at)

    def _stuck(self, timer_at: float | None) -> bool:
        """Before parking: a dwell limit that came due raises its alert (once per entry);
        with a transition on the stuck event it is taken as a failure outcome (the held
        job's attempt fails). Returns whether the machine enters a state."""
        stuck = self._deadlines.stuck(self._entry(), timer_at)
        if stuck is None or stuck.transition is None:
            return False
        reason = stuck.reason(self.state)
        self.context["last_error"] = reason
        if self.runtime.job is not None and self.runtime.pending.job_ack is None:
            self.runtime.fail_job(reason)
        self._commit(stuck.event, stuck.transition.target)
        return True

    def _record_alert(self, kind: str, payload: dict[str, Any]) -> None:
        """A realtime row outside any step (an alert while the machine waits or works),
        after what is staged so the stream keeps its order; the UI is rung."""
        self.make_visible()
        self.store.add_realtime(self.machine_name, kind, payload)
        self._ring_ui()

    def _raised(self, action: BaseAction, exc: Exception) -> Failure:
        """An action's exception: our own errors by their message, others with their type;
        the traceback is logged with --debug."""
        if isinstance(exc, StateMachineError):
            message = str(exc) or type(exc).__name__
        else:
            message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if self._tracebacks or logger.isEnabledFor(logging.DEBUG):
            level = logging.ERROR if self._tracebacks else logging.DEBUG
            logger.log(
                level, "[%s] %s raised", self.machine_name, type(action).__name__, exc_info=exc
            )
        return self._failed(action, message)

    def _failed(self, action: BaseAction, message: str) -> Failure:
        self.context["last_error"] = message
        self.context["last_error_action"] = type(action).__name__
        return action.failure(message)

    def _stage_leftovers(self) -> None:
        """Stage what the actions left (events to send, job ack) as a step without a state
        change."""
        runtime = self.runtime
        # The actions ran out: the handling of the event in hand ends too.
        if not runtime.pending.empty or runtime.in_hand is not None:
            self._commit(None, None)

    def _commit(self, event: str | None, target: str | None) -> None:
        """One step: state change, consumed event, job ack and outbox, all or nothing. It is
        staged and commits at the next flush, together with the steps that follow it while
        only instant actions run (see GroupCommit); nothing is rung before it commits.
        An event consumed by a transition stays `handling` until the next step, which ends
        its handling (`processed`): a crash in between leaves it for the next start."""
        runtime = self.runtime
        if target is not None:
            runtime.complete_on_return(target, self.context)
        job = runtime.job
        lost = runtime.lease_lost
        pending = runtime.take_pending()
        ack, outbox, consumed = pending.job_ack, pending.outbox, pending.consumed_event
        finished = runtime.in_hand
        runtime.in_hand = consumed if consumed is not None and target is not None else None
        if lost and ack is None and outbox:
            outbox = []  # the store fences only an ack; without one the engine drops them
        now = self.clock.now()
        previous = self.state
        if target is not None:
            self.step += 1
        snapshot = None
        if target is not None and self._resume is not None:
            holds = job is not None and ack is None and not lost
            snapshot = self._resume.snapshot(target, self.step, now, holds_job=holds)
        step = Step(
            machine_name=self.machine_name,
            at=now,
            step=self.step,
            from_state=previous,
            to_state=target,
            event=event,
            consumed_event_id=consumed.id if consumed else None,
            consumed_event_status="handling" if target is not None else "unhandled",
            finished_event_id=finished.id if finished is not None else None,
            job_id=job.job_id if job else None,
            job_ack=ack,
            outbox=outbox,
            realtime=pending.realtime,
            snapshot=snapshot,
            attempt=job.attempts if job else None,
            actions=pending.actions,
        )
        report = job is not None and ack is not None and job.job_id == runtime.adopted

        def committed(acked: bool) -> None:
            if target is not None:
                tracing.step(self.machine_name, previous, target, event, job)
            if (not acked or lost) and job is not None:
                logger.warning(
                    "[%s] lease lost on job %s; its result and events are discarded",
                    self.machine_name,
                    job.job_id,
                )
            if acked and ack is not None and job is not None and ack.outcome == "failed":
                self._log_failed_attempt(job, ack, pending.actions)
            if acked and ack is not None and ack.retry_delay is not None:
                self._parking.retry_due(now + ack.retry_delay)
            if acked:
                self._ring(outbox)
            if report:
                self._report_done()

        self.commits.stage(step, committed)
        if ack is not None or lost:
            runtime.drop_job(self.context)
        if target is not None:
            self.state = target
            self.entered_at = now
            self.context["current_state"] = target
            self._instant_steps += 1
            self._recent.append((previous, str(event), target))
            logger.info("[%s] %s --%s--> %s", self.machine_name, previous, event, target)
        self._conditions.notify()

    def _log_failed_attempt(self, job: Job, ack: JobAck, runs: Sequence[ActionRun]) -> None:
        """Every failed attempt is a WARNING; a job failed for good is an ERROR. One line:
        the exit code and first line of stderr of a failed command, else the reason's."""
        final = ack.retry_delay is None or job.attempts >= job.max_attempts
        reason, fields = failure_summary(ack.error, runs)
        extra = {**fields, "job_id": job.job_id, "attempt": job.attempts}
        if final:
            logger.error(
                "[%s] job %s failed for good after attempt %d: %s",
                self.machine_name,
                job.job_id,
                job.attempts,
                reason,
                extra=extra,
            )
            return
        logger.warning(
            "[%s] job %s attempt %d of %d failed: %s; retry in %.3g s",
            self.machine_name,
            job.job_id,
            job.attempts,
            job.max_attempts,
            reason,
            ack.retry_delay,
            extra=extra,
        )

    def _report_done(self) -> None:
        """Tell the machine that handed this one its job that the job's attempt ended."""
        target = self.runtime.report_to
        if target is not None:
            with contextlib.suppress(StateMachineError, ValueError):
                ring(target, {"kind": "job_done", "job_id": self.runtime.adopted})

    def _ring(self, outbox: Iterable[OutgoingEvent]) -> None:
        """Wake the targets of committed events; a lost doorbell only delays delivery."""
        for target in {out.target_machine for out in outbox}:
            if target == self.machine_name:
                self.wake()
                continue
            with contextlib.suppress(StateMachineError, ValueError):
                ring(target, EVENT_DOORBELL)

    def _flushed(self, released: Sequence[Job]) -> None:
        """After a group commit: wake a running UI and re-check what callers wait for (the
        store woke the workers of jobs given back)."""
        self._ring_ui()
        self._conditions.notify()

    def _ring_ui(self) -> None:
        """Tell a running UI to read the stream now; a lost doorbell only delays the page."""
        with contextlib.suppress(StateMachineError, ValueError):
            ring(UI_DOORBELL, EVENT_DOORBELL)

    def _lease_lost(self, job: Job) -> None:
        logger.warning(
            "[%s] lease lost on job %s; stopping its action", self.machine_name, job.job_id
        )
        if self._current is not None and not self._current.done():
            self._current.cancel()

    def snapshot(self) -> dict[str, Any]:
        """Where the machine is, for logs and tests."""
        return {
            "machine_name": self.machine_name,
            "state": self.state,
            "step": self.step,
            "since": iso(self.entered_at),
            "parked": self.parked,
            "job_id": self.runtime.job.job_id if self.runtime.job else None,
        }


def _event_name(result: object) -> str | None:
    """What an action returned, as an event name (a Failure stays one)."""
    return result if result is None or isinstance(result, str) else str(result)
