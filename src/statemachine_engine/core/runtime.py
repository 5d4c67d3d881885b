"""Runtime: what a running machine offers its actions (store, clock, job, outbox)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from statemachine_engine.clock import Clock
from statemachine_engine.config.model import MachineDefinition
from statemachine_engine.core.groupcommit import GroupCommit
from statemachine_engine.core.interpolate import resolve
from statemachine_engine.core.jobpolicy import JobPolicy
from statemachine_engine.core.pendingstep import PendingStep
from statemachine_engine.core.storable import check_storable, clipped
from statemachine_engine.database.liveness import owner_pid, process_alive, this_host
from statemachine_engine.database.records import (
    ActionRun,
    Claim,
    Job,
    JobAck,
    MachineEvent,
    MachineStatus,
    OutgoingEvent,
)
from statemachine_engine.database.store import Store
from statemachine_engine.errors import ActionError, PlaceholderError, StateMachineError, StopTimeout

logger = logging.getLogger(__name__)


def owner_of(machine_name: str, pid: int | None = None) -> str:
    """The lease owner a machine process writes on the jobs it holds: name@host:pid."""
    return f"{machine_name}@{socket.gethostname()}:{os.getpid() if pid is None else pid}"


def _never(at: float) -> None:
    pass


@dataclass(frozen=True)
class CommandResult:
    """What a `bash` command did: its exit code, output and whether its timeout killed it.
    A test harness may supply one instead of running the command (`Runtime.bash_stub`)."""

    exit_code: int | None
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False
    #: The last bytes of each stream (core.pendingstep.TAIL_BYTES), also when the head kept
    #: in `stdout`/`stderr` was truncated; None: the tail of `stdout`/`stderr`.
    stdout_tail: str | None = None
    stderr_tail: str | None = None


@dataclass(frozen=True)
class HandedJob:
    """A job this machine handed to a machine it started: who holds it, on which attempt."""

    job_id: str
    owner: str
    machine: str
    attempts: int


@dataclass
class Runtime:
    """Per-machine services and the bookkeeping of the step in progress.

    Actions record intentions here (send an event, complete the job, consume an event);
    the engine commits them together with the next transition.
    """

    machine_name: str
    store: Store
    clock: Clock
    definition: MachineDefinition
    owner: str
    db_url: str
    config_path: Path
    #: Lease, heartbeat and retry rules for the jobs this machine holds.
    policy: JobPolicy
    #: The engine's group commit: a claim commits the steps staged so far with it.
    commits: GroupCommit
    actions_dirs: tuple[Path, ...] = ()
    job: Job | None = None
    job_state: str | None = None
    job_by_id: bool = False
    lease_lost: bool = False
    #: When the held job's lease was last claimed or renewed (clock time; set by any thread).
    lease_renewed_at: float = 0.0
    #: What the actions of the step in progress recorded (see take_pending).
    pending: PendingStep = field(default_factory=PendingStep)
    #: The event whose handling is in progress: its consuming step was staged, and the
    #: machine's next step ends the handling (DESIGN §13.5).
    in_hand: MachineEvent | None = None
    safety_interval: float = 5.0
    #: Counts claimed jobs and taken events: outside input, which the loop guard resets on.
    progress: int = 0
    #: Jobs handed to machines this one started, by id (see hand_over).
    handed: dict[str, HandedJob] = field(default_factory=dict)
    #: The job handed to this machine at start, and the machine to tell when it ends.
    adopted: str | None = None
    report_to: str | None = None
    #: Set when a job this machine waits for may have changed (a doorbell, a child's exit).
    job_news: asyncio.Event = field(default_factory=asyncio.Event)
    #: Tests only: given a rendered `bash` command and the action running it, the result to
    #: use instead of running it (None runs it). See statemachine_engine.testing.
    bash_stub: Callable[[str, Any], CommandResult | None] | None = None
    #: Called with the time a job failed here becomes claimable again (the engine looks then).
    retry_due: Callable[[float], None] = _never

    def claim_job(
        self,
        job_type: str | None,
        *,
        lease_seconds: float | None = None,
        machine_type: str | None = None,
        job_id: str | None = None,
    ) -> Job | None:
        """Claim the next runnable job of `job_type` (or the job `job_id`) under a lease of
        this machine; the steps staged so far commit in the same transaction."""
        lease = self.policy.lease_for(job_type) if lease_seconds is None else lease_seconds
        return self.commits.claim(Claim(job_type, self.owner, lease, machine_type, job_id))

    def hold_job(
        self, job: Job, state: str | None, context: dict[str, Any], *, by_id: bool = False
    ) -> None:
        """Make `job` the machine's current job, claimed in `state`. A job claimed by id
        (or handed over) is never completed by returning to `state`."""
        self.progress += 1
        self.job = job
        self.job_state = state
        self.job_by_id = by_id
        self.pending.job_ack = None
        self.lease_lost = False
        self.lease_renewed_at = self.clock.now()
        context["current_job"] = job.as_context()
        context["job_id"] = job.job_id
        context["job_type"] = job.job_type
        context["data"] = job.data

    def drop_job(self, context: dict[str, Any]) -> None:
        """Forget the current job (acknowledged, released or lost). Its context keys stay
        until the next claim, so an error state can still name the job that failed."""
        self.job = None
        self.job_state = None
        self.job_by_id = False
        self.lease_lost = False

    def complete_job(self, result: Any = None) -> bool:
        """Mark the current job completed when the step commits; False if there is none.
        Raises ActionError for a result that cannot be stored (the job is left undecided)."""
        if self.job is None:
            return False
        check_storable(result, f"result of job {self.job.job_id}")
        self.pending.job_ack = JobAck(self.job.job_id, self.owner, "completed", result=result)
        return True

    def complete_on_return(self, target: str, context: dict[str, Any]) -> None:
        """A transition back to the state that claimed the job completes it, unless the
        step already decided (an error failed it, or an action acknowledged it)."""
        if self.job is None or self.pending.job_ack is not None or self.job_by_id:
            return
        if target == self.job_state:
            try:
                self.complete_job(context.get("result"))
            except ActionError as exc:
                logger.warning("[%s] %s; failing the attempt", self.machine_name, exc)
                self.fail_job(str(exc))

    def fail_job(self, error: str, *, retry: bool = True) -> bool:
        """Fail this attempt of the current job when the step commits; it is retried after
        `backoff * 2**(attempts-1)` seconds (± jitter) until its attempts run out."""
        if self.job is None:
            return False
        delay = self.policy.retry_delay_for(self.job) if retry else None
        error = clipped(error)
        self.pending.job_ack = JobAck(
            self.job.job_id, self.owner, "failed", error=error, retry_delay=delay
        )
        return True

    def hand_over(self, machine: str, pid: int, context: dict[str, Any]) -> Job:
        """Move the held job's lease to the machine process `pid` just started as `machine`
        (the attempt goes with it); this machine no longer holds it. Raises ActionError when
        the lease was lost meanwhile."""
        job = self.job
        assert job is not None
        to = owner_of(machine, pid)
        if not self.store.heartbeat(
            job.job_id, self.owner, self.policy.lease_for(job.job_type), to=to
        ):
            raise ActionError(f"start_fsm: lost the lease on job {job.job_id!r} before handing it")
        self.handed[job.job_id] = HandedJob(job.job_id, to, machine, job.attempts)
        self.drop_job(context)
        logger.info("[%s] handed job %s to %s", self.machine_name, job.job_id, machine)
        return job

    def handed_attempt_ended(self, job: Job) -> bool:
        """True when the attempt this machine handed over has ended (or `job` was not handed
        by this machine and is simply not processing)."""
        handed = self.handed.get(job.job_id)
        if handed is None:
            return job.status != "processing"
        return not (
            job.status == "processing"
            and job.lease_owner == handed.owner
            and job.attempts == handed.attempts
        )

    def fail_lost_holder(self, job: Job, why: str) -> str | None:
        """Fail the attempt of `job` whose holder died (fenced on its owner): back to the
        queue with backoff, or failed for good."""
        owner = job.lease_owner or ""
        error = f"{why} while holding the job"
        delay = self.policy.retry_delay_for(job)
        status = self.store.fail_job(job.job_id, owner, error, retry_delay=delay)
        if status == "pending" and delay is not None:
            self.retry_due(self.clock.now() + delay)
        if status is not None:
            log = logger.error if status == "failed" else logger.warning
            log(
                "[%s] job %s attempt %d failed: %s",
                self.machine_name,
                job.job_id,
                job.attempts,
                error,
            )
        return status

    def child_exited(self, machine: str, pid: int, code: int) -> None:
        """A machine this one started has exited: a job still held by it fails its attempt."""
        owner = owner_of(machine, pid)
        for handed in [h for h in self.handed.values() if h.owner == owner]:
            with contextlib.suppress(StateMachineError):
                job = self.store.get_job(handed.job_id)
                if job is not None and job.status == "processing" and job.lease_owner == owner:
                    self.fail_lost_holder(job, f"machine {machine} exited with code {code}")
        self.job_news.set()

    async def wait_news(self, seconds: float) -> None:
        """Wait until `job_news` is set or `seconds` pass on the machine's clock."""
        news = asyncio.ensure_future(self.job_news.wait())
        sleep = asyncio.ensure_future(self.clock.sleep(seconds))
        try:
            await asyncio.wait({news, sleep}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (news, sleep):
                task.cancel()
            await asyncio.gather(news, sleep, return_exceptions=True)

    def adopt_job(self, job_id: str, context: dict[str, Any]) -> bool:
        """Hold the job `job_id` handed to this machine process by the machine that started
        it; a job that is not (or no longer) ours is left alone with a warning."""
        self.adopted = job_id
        job = self.store.get_job(job_id)
        if job is None or job.status != "processing" or job.lease_owner != self.owner:
            found = "no such job" if job is None else f"{job.status}, held by {job.lease_owner}"
            logger.warning(
                "[%s] job %s was not handed to this process (%s); running without it",
                self.machine_name,
                job_id,
                found,
            )
            return False
        # The lease was set by the machine that handed it over: renew it on our own terms.
        self.store.heartbeat(job.job_id, self.owner, self.policy.lease_for(job.job_type))
        self.hold_job(job, None, context, by_id=True)
        logger.info("[%s] holding job %s handed over at start", self.machine_name, job_id)
        return True

    def release_job(self, context: dict[str, Any]) -> bool:
        """Give the held job back to the queue without counting the attempt (on stop).
        False when the database could not be reached before the stop deadline: the job
        stays `processing` until its lease expires and is then retried, as after a crash."""
        job = self.job
        if job is None:
            return True
        try:
            if self.store.release_job(job.job_id, self.owner):
                logger.info("[%s] released job %s to the queue", self.machine_name, job.job_id)
        except StopTimeout:
            return False
        except StateMachineError:
            pass
        finally:
            self.drop_job(context)
        return True

    def recover_jobs(self, previous: MachineStatus | None = None) -> None:
        """Jobs still held by an earlier run of this machine on this host whose process is
        gone (pid not alive, or alive with another start time than `previous`, the machine
        row before this run registered): that run died mid-job (a clean stop releases), so
        the attempt counts and is retried with backoff; a job that kills its worker must not
        be retried forever. A holder that may still live keeps its job until its lease ends."""
        host = this_host()
        for job in self.store.list_jobs(status="processing", limit=1000):
            owner = job.lease_owner or ""
            pid = owner_pid(owner, self.machine_name, host)
            if pid is None or (self.job is not None and job.job_id == self.job.job_id):
                continue  # not ours, or the job handed to this run at start
            if pid != os.getpid():  # our own pid: an earlier engine in this process
                same = previous is not None and (previous.pid, previous.hostname) == (pid, host)
                start = previous.pid_start if same and previous is not None else None
                if process_alive(pid, start, host) is not False:
                    continue
            error = f"worker {owner} died while running the job"
            delay = self.policy.retry_delay_for(job)
            status = self.store.fail_job(job.job_id, owner, error, retry_delay=delay)
            logger.warning("[%s] %s: job %s is %s", self.machine_name, error, job.job_id, status)

    def recover_events(self, previous: MachineStatus | None) -> None:
        """Events an earlier run of this machine was handling when it ended without
        finishing them (killed, or exit 1 on a database error): handed to this run again
        before any later event, or failed for good after MAX_EVENT_DELIVERIES deliveries."""
        why = f"an earlier run of {self.machine_name} ended while handling it"
        if previous is not None:
            ended = "died" if previous.status == "running" else f"ended ({previous.status})"
            where = f"pid {previous.pid} on {previous.hostname}"
            why = f"machine {self.machine_name} ({where}) {ended} while handling it"
        # A resumed machine goes on handling the event that brought it to its state.
        keep = None if self.in_hand is None else self.in_hand.id
        for event in self.store.recover_events(self.machine_name, why, keep=keep):
            log = logger.error if event.status == "failed" else logger.warning
            log(
                "[%s] event %s (%s): %s",
                self.machine_name,
                event.id,
                event.event_type,
                event.error_message,
            )

    def release_event(self) -> None:
        """Give the event whose handling a stop cut short back to the queue, uncounted."""
        event, self.in_hand = self.in_hand, None
        if event is None:
            return
        with contextlib.suppress(StateMachineError):
            if self.store.release_event(event.id):
                logger.info(
                    "[%s] released event %s (%s) to be handled at the next start",
                    self.machine_name,
                    event.id,
                    event.event_type,
                )

    def send(
        self, target: str, event_type: str, payload: Any = None, job_id: str | None = None
    ) -> None:
        """Queue an event for another machine; written in the same transaction as the step.
        Raises ActionError for a payload that cannot be stored (over 1 MiB, not JSON)."""
        check_storable(payload, f"payload of event {event_type!r} for {target!r}")
        self.pending.outbox.append(OutgoingEvent(target, event_type, payload, job_id))

    def consume(self, event: MachineEvent, context: dict[str, Any]) -> None:
        """Take `event` as the event being handled; marked processed when the step commits."""
        self.pending.consumed_event = event
        self.progress += 1
        context["event_data"] = event.as_context()
        spec = self.definition.events.get(event.event_type)
        if spec is not None and spec.context_map:
            for key, path in spec.context_map.items():
                try:
                    context[key] = resolve(path, context)
                except PlaceholderError:
                    logger.warning(
                        "[%s] event %s has no %s for context key %s",
                        self.machine_name,
                        event.event_type,
                        path,
                        key,
                    )

    def unhandled(self, event: MachineEvent, state: str) -> None:
        """Record `event` as having no transition from `state` when the step commits."""
        self.pending.consumed_event = event
        detail = {"machine_name": self.machine_name, "state": state, "event": event.event_type}
        self.pending.realtime.append(("unhandled_event", {**detail, "event_id": event.id}))

    def activity(self, message: str, level: str = "info") -> None:
        """A line for the UI's activity feed, committed with the step."""
        self.pending.realtime.append(
            (
                "activity",
                {"machine_name": self.machine_name, "message": clipped(message), "level": level},
            )
        )

    def action_ran(self, state: str, action: str, job: Job | None, started_at: float) -> None:
        """An action of `state` ended; with a job held when it started, it joins that
        attempt's history (with the command a `bash` action ran), stored with the step."""
        command, self.pending.command = self.pending.command, None
        if job is None:
            return
        run = ActionRun(job.job_id, job.attempts, state, action, started_at, self.clock.now())
        if command is not None:
            run = replace(
                run,
                command=command.command,
                exit_code=command.exit_code,
                stdout_tail=command.stdout_tail,
                stderr_tail=command.stderr_tail,
            )
        self.pending.actions.append(run)

    def take_pending(self) -> PendingStep:
        """Hand the step's intentions to the engine and start a fresh step."""
        pending, self.pending = self.pending, PendingStep()
        return pending

    def confirm_lease(self) -> bool:
        """Before an action's result is committed: when the held job's lease has gone a
        whole lease without renewal (the process was stopped, renewals failed), renew it now,
        on the loop, so a result the lease thread has not yet found stale is not taken for
        current. False, with `lease_lost` set, when another worker has the job."""
        job = self.job
        if job is None or self.lease_lost:
            return not self.lease_lost
        lease = self.policy.lease_for(job.job_type)
        now = self.clock.now()
        if now - self.lease_renewed_at < lease:
            return True
        try:
            alive = self.store.heartbeat(job.job_id, self.owner, lease)
        except StateMachineError:
            return True  # the commit is fenced on the lease owner anyway
        if alive:
            self.lease_renewed_at = now
            return True
        self.lease_lost = True
        return False

    async def keep_lease(self, on_lost: Callable[[Job], None]) -> None:
        """Renew the lease of the held job every heartbeat period (a third of the lease by
        default); when another worker has taken it, set `lease_lost` (the next commit is
        fenced) and call `on_lost`. A task on the loop, used only with an injected clock or an
        in-memory database; otherwise core.heartbeat.LeaseKeeper renews from its own thread."""
        while True:
            await self.clock.sleep(self.policy.renewal_period(self.job))
            job = self.job
            if job is None or self.lease_lost:
                continue
            renewing = self.clock.now()
            try:
                alive = self.store.heartbeat(
                    job.job_id, self.owner, self.policy.lease_for(job.job_type)
                )
            except StateMachineError as exc:
                logger.warning("[%s] heartbeat failed: %s", self.machine_name, exc)
                continue
            if alive and self.job is job:
                self.lease_renewed_at = renewing
            if not alive and self.job is job:
                self.lease_lost = True
                on_lost(job)
