"""The store port: one interface, implemented by the SQLite and PostgreSQL adapters."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from statemachine_engine.clock import Clock
from statemachine_engine.database.records import DEFAULT_MAX_ATTEMPTS as DEFAULT_MAX_ATTEMPTS
from statemachine_engine.database.records import DEFAULT_PRIORITY as DEFAULT_PRIORITY
from statemachine_engine.database.records import (
    MAX_EVENT_DELIVERIES,
    Claim,
    Committed,
    Job,
    MachineEvent,
    MachineStatus,
    NewJob,
    OutgoingEvent,
    RealtimeEvent,
    Step,
    TransitionRecord,
)

if TYPE_CHECKING:  # metrics.py reads rows, whose codec imports this module
    from statemachine_engine.database.attempts import JobTimeline
    from statemachine_engine.database.history import TimelinePage
    from statemachine_engine.database.metrics import MetricsSnapshot
    from statemachine_engine.database.schedules import Schedule, ScheduleSpec
    from statemachine_engine.database.stream import StreamCursor

DEFAULT_LEASE_SECONDS = 30.0
MAX_PAYLOAD_BYTES = 1024 * 1024


class Store(Protocol):
    """Persistent jobs, events, machine state and history. Every method is one transaction."""

    url: str
    #: The time line of every stored time (leases, run-after, timestamps): on PostgreSQL the
    #: server's clock, so that hosts whose clocks disagree still agree on leases.
    clock: Clock

    def close(self) -> None: ...

    def give_up_waiting(self, at: float | None) -> None:
        """From monotonic time `at` on, a call that waits for the database (a lock held by
        another process, a reconnect) fails with StopTimeout instead: its machine is
        stopping. None waits again. Safe from a signal handler or another thread."""
        ...

    # jobs
    def add_job(
        self,
        job_type: str,
        data: Any = None,
        *,
        job_id: str | None = None,
        machine_type: str | None = None,
        priority: int = DEFAULT_PRIORITY,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        run_after: float | None = None,
        if_absent: bool = False,
    ) -> Job:
        """Enqueue a job and wake its workers after the commit; raises DuplicateJobError for
        an existing id unless if_absent (then the existing job is returned)."""
        ...

    def add_jobs(self, jobs: Iterable[NewJob], *, if_absent: bool = False) -> list[str]:
        """Enqueue many jobs in one transaction, waking their workers once; the ids added,
        in order. An existing or repeated id raises DuplicateJobError and nothing is added,
        unless if_absent (it is skipped)."""
        ...

    def claim_job(
        self,
        job_type: str | None,
        owner: str,
        *,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        machine_type: str | None = None,
        job_id: str | None = None,
    ) -> Job | None:
        """Atomically claim the next runnable job (or the given one); None when there is none."""
        ...

    def heartbeat(
        self, job_id: str, owner: str, lease_seconds: float, *, to: str | None = None
    ) -> bool:
        """Extend the lease (handing it to owner `to` when given: the job moves to another
        machine with its attempt); False when the lease was lost."""
        ...

    def complete_job(self, job_id: str, owner: str, result: Any = None) -> bool: ...

    def fail_job(
        self, job_id: str, owner: str, error: str, *, retry_delay: float | None = None
    ) -> str | None:
        """Fail this attempt: back to pending after retry_delay, or failed for good at max
        attempts. Returns the new status, or None when the lease was lost."""
        ...

    def release_job(self, job_id: str, owner: str) -> bool:
        """Give an unfinished job back to the queue without counting the attempt."""
        ...

    def release_jobs(self, owner_prefix: str) -> int:
        """Release every job whose lease owner starts with owner_prefix (restart recovery)."""
        ...

    def get_job(self, job_id: str) -> Job | None: ...

    def list_jobs(
        self,
        *,
        status: str | None = None,
        job_type: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Job]: ...

    def count_jobs(self, *, job_type: str | None = None) -> dict[str, int]: ...

    def retry_job(self, job_id: str) -> Job: ...

    def cancel_job(self, job_id: str) -> Job: ...

    def retry_jobs(
        self, job_ids: Sequence[str], *, data: Mapping[str, Any] | None = None
    ) -> list[Job]:
        """Retry failed or cancelled jobs, all or none (NotFoundError/StoreError naming the
        first that cannot be); `data` replaces the data of the jobs it names."""
        ...

    def cancel_jobs(self, job_ids: Sequence[str]) -> list[Job]:
        """Cancel pending jobs, all or none."""
        ...

    def failed_jobs(self, limit: int = 100) -> list[Job]:
        """Failed jobs, most recently failed first."""
        ...

    def delayed_jobs(self, limit: int = 100) -> list[Job]:
        """Pending jobs not runnable before a later time, soonest first."""
        ...

    def overdue_leases(self) -> list[tuple[str, str, float]]:
        """(job id, owner, lease expiry) of processing jobs held past their lease."""
        ...

    # events between machines
    def send_event(
        self,
        target: str,
        event_type: str,
        payload: Any = None,
        *,
        source: str | None = None,
        job_id: str | None = None,
    ) -> MachineEvent: ...

    def send_events(
        self, events: Sequence[OutgoingEvent], *, source: str | None = None
    ) -> list[MachineEvent]:
        """Store several events (e.g. one per target of a fan-out) in one transaction."""
        ...

    def next_event(self, target: str) -> MachineEvent | None:
        """The oldest pending event for target, without consuming it."""
        ...

    def mark_event(self, event_id: int, status: str) -> bool: ...

    def recover_events(
        self,
        target: str,
        why: str,
        *,
        max_deliveries: int = MAX_EVENT_DELIVERIES,
        keep: int | None = None,
    ) -> list[MachineEvent]:
        """Events for `target` still `handling` from a run that ended without finishing their
        handling (`why` says how): pending again (first in line, by id) with the reason in
        `error_message`, or `failed` once handed `max_deliveries` times. Each gets an
        `event_interrupted` realtime row. The event `keep` stays `handling` (a resumed
        machine goes on handling it). Call only at the start of a new run of `target`."""
        ...

    def release_event(self, event_id: int) -> bool:
        """Give an event whose handling a clean stop cut short back to the queue (pending,
        the delivery not counted); False when it is not `handling`."""
        ...

    def list_events(
        self, *, target: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[MachineEvent]: ...

    def clear_events(self, target: str) -> int:
        """Mark every pending event for target as processed; returns how many."""
        ...

    # machines
    def register_machine(
        self,
        name: str,
        state: str,
        *,
        pid: int,
        hostname: str,
        config_path: str,
        definition_name: str,
        definition_hash: str,
        definition_text: str,
        at: float,
        pid_start: int | None = None,
        entered_at: float | None = None,
        snapshot: str | None = None,
    ) -> MachineStatus:
        """Record machine `name` as running in process `pid` (started at `pid_start`, see
        database.liveness) on `hostname`, in `state` since `entered_at` (default `at`), with
        its resume `snapshot` (None for machines that start over). Raises
        MachineRunningError while the row says the name runs in another live process on
        this host, or runs on another host."""
        ...

    def machine_stopped(self, name: str, status: str, at: float) -> None:
        """Record the end of a run; a no-op for a name this store was refused registering."""
        ...

    def get_machine(self, name: str) -> MachineStatus | None: ...

    def machine_snapshot(self, name: str) -> str | None:
        """The resume snapshot the last step entering a state wrote (codec JSON, see
        core.resume), or None: no such machine, or one that starts over on restart."""
        ...

    def list_machines(self) -> list[MachineStatus]: ...

    def get_definition(self, digest: str) -> dict[str, Any] | None: ...

    def list_definitions(self) -> list[dict[str, Any]]:
        """Every stored definition version: digest, name, created_at (first seen)."""
        ...

    def history(
        self, *, machine: str | None = None, limit: int = 100
    ) -> list[TransitionRecord]: ...

    def machine_timeline(
        self, name: str, *, before: str | None = None, limit: int = 100
    ) -> TimelinePage:
        """One page of the machine's history, newest first: transitions, events received
        and sent, jobs taken and given back, errors, starts and stops (database/history.py).
        `before` is the previous page's cursor; CursorError for one it did not hand out."""
        ...

    def commit_step(self, step: Step) -> bool:
        """Commit a step (state, history, consumed event, job ack, outbox, realtime rows) in one
        transaction. If the job ack is fenced (lease lost), commit the step without the ack
        and without the outbox and return False."""
        ...

    def commit_steps(
        self,
        steps: Sequence[Step],
        claim: Claim | None = None,
        release: Sequence[Job] = (),
    ) -> Committed:
        """Commit several steps of one machine in order, give back `release` (held jobs that
        were never started: pending again, the attempt not counted) and then make `claim`
        (if given), in one transaction (group commit). Each step keeps its all-or-nothing
        rule; a claim that follows a job ack costs no commit of its own."""
        ...

    def job_timeline(self, job_id: str) -> JobTimeline | None:
        """The job and each of its attempts (worker, start, end, outcome, error) with the
        transitions it caused, the events it sent and the actions that ran; None for an
        unknown job."""
        ...

    def prune(self, before: float, *, dry_run: bool = False) -> dict[str, int]:
        """Delete history older than `before`: completed and cancelled jobs (with their
        attempts and actions), handled events, transitions and realtime rows. Pending,
        processing and failed jobs and pending events are never deleted. Returns the number
        of rows deleted per table; with `dry_run`, the number that would be, deleting nothing."""
        ...

    # metrics
    def metrics_snapshot(self) -> MetricsSnapshot:
        """Job, machine, event and time-in-state counts for `/metrics`, read in one
        transaction."""
        ...

    # schedules (database/schedules.py)
    def add_schedule(self, spec: ScheduleSpec) -> Schedule:
        """Store a new schedule, first due at its next tick; StoreError when the name exists."""
        ...

    def put_schedule(self, spec: ScheduleSpec) -> Schedule:
        """Add the schedule or change the stored one of that name to `spec` (a system file's
        `schedules:`): the next tick is recomputed only when the timing changed."""
        ...

    def get_schedule(self, name: str) -> Schedule | None: ...

    def list_schedules(self) -> list[Schedule]: ...

    def pause_schedule(self, name: str) -> Schedule:
        """Stop firing (NotFoundError for an unknown name); idempotent."""
        ...

    def resume_schedule(self, name: str) -> Schedule:
        """Fire again from the next tick on: ticks that fell due while paused are skipped."""
        ...

    def remove_schedule(self, name: str) -> None:
        """Delete the schedule (its jobs stay); NotFoundError for an unknown name."""
        ...

    def fire_schedules(self) -> float | None:
        """Enqueue each due tick of every active schedule exactly once, however many
        processes call this at once, as the schedule's catch-up says; the next due time
        (None when no schedule is active)."""
        ...

    # realtime stream
    def add_realtime(self, machine: str | None, kind: str, payload: dict[str, Any]) -> None: ...

    def realtime_since(self, after_id: int = 0, limit: int = 500) -> list[RealtimeEvent]: ...

    def realtime_read(self, cursor: StreamCursor, limit: int = 500) -> list[RealtimeEvent]:
        """Up to `limit` more rows after `cursor` that are final, in id order, each once: a row
        committed after a higher id was read is still returned (see StreamCursor)."""
        ...

    def last_realtime_id(self) -> int:
        """The id of the newest realtime row (0 when there is none): where a reader that
        wants only what comes next starts."""
        ...
