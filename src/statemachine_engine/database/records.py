"""Plain records the store returns and accepts; JSON-friendly through `to_dict()`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

DEFAULT_PRIORITY = 5
DEFAULT_MAX_ATTEMPTS = 3

JobStatus = Literal["pending", "processing", "completed", "failed", "cancelled"]
JOB_STATUSES: tuple[str, ...] = ("pending", "processing", "completed", "failed", "cancelled")
EventStatus = Literal["pending", "handling", "processed", "unhandled", "failed"]
EVENT_STATUSES: tuple[str, ...] = ("pending", "handling", "processed", "unhandled", "failed")
#: A run that dies while handling an event hands it again at the next start, up to this many
#: deliveries in all; then the event is `failed` (DESIGN §13.5).
MAX_EVENT_DELIVERIES = 3


@dataclass(frozen=True)
class Job:
    """A row of `jobs`. Lower `priority` runs first (1 is highest, 5 the default)."""

    job_id: str
    job_type: str
    data: Any
    status: str
    priority: int
    attempts: int
    max_attempts: int
    created_at: float
    machine_type: str | None = None
    lease_owner: str | None = None
    lease_expires_at: float | None = None
    run_after: float = 0.0
    started_at: float | None = None
    completed_at: float | None = None
    result: Any = None
    error_message: str | None = None
    errors: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["errors"] = list(self.errors)
        return out

    def as_context(self) -> dict[str, Any]:
        """The `current_job` view actions and placeholders see."""
        return {
            "id": self.job_id,
            "job_id": self.job_id,
            "job_type": self.job_type,
            "machine_type": self.machine_type,
            "data": self.data,
            "priority": self.priority,
            "attempts": self.attempts,
            "max_attempts": self.max_attempts,
        }


@dataclass(frozen=True)
class MachineEvent:
    """A row of `machine_events`: an event addressed to one machine, delivered in id order.
    `status` is `pending`, `handling` (consumed, its handling not finished yet), `processed`,
    `unhandled` or `failed` (interrupted by crashes MAX_EVENT_DELIVERIES times);
    `deliveries` counts the runs it was handed to, `error_message` why it was handed again."""

    id: int
    target_machine: str
    event_type: str
    payload: Any
    status: str
    created_at: float
    source_machine: str | None = None
    job_id: str | None = None
    processed_at: float | None = None
    deliveries: int = 0
    error_message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def as_context(self) -> dict[str, Any]:
        """The `event_data` view actions and placeholders see."""
        return {
            "id": self.id,
            "name": self.event_type,
            "event_type": self.event_type,
            "payload": self.payload,
            "source": self.source_machine,
            "job_id": self.job_id,
            "delivery": self.deliveries + 1,
        }


@dataclass(frozen=True)
class MachineStatus:
    """A row of `machine_state`: where a machine is and whether its process runs."""

    machine_name: str
    current_state: str
    status: str
    step: int
    updated_at: float
    previous_state: str | None = None
    last_event: str | None = None
    state_entered_at: float | None = None
    pid: int | None = None
    hostname: str | None = None
    pid_start: int | None = None
    config_path: str | None = None
    definition_name: str | None = None
    definition_hash: str | None = None
    current_job_id: str | None = None
    started_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TransitionRecord:
    """A row of `transitions`: one step of one machine's history."""

    id: int
    machine_name: str
    step: int
    from_state: str | None
    to_state: str
    event: str | None
    created_at: float
    job_id: str | None = None
    event_id: int | None = None
    #: The delivery of `event_id` this step made: 1, or 2 and more for a redelivered event.
    event_delivery: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RealtimeEvent:
    """A row of `realtime_events`: what the monitoring UI streams."""

    id: int
    machine_name: str | None
    kind: str
    payload: Any
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class OutgoingEvent:
    """An event an action wants to send; written in the same transaction as the step."""

    target_machine: str
    event_type: str
    payload: Any = None
    job_id: str | None = None


@dataclass(frozen=True)
class JobAck:
    """What a step does to the job the machine holds: complete it or fail this attempt."""

    job_id: str
    owner: str
    outcome: Literal["completed", "failed"]
    result: Any = None
    error: str | None = None
    retry_delay: float | None = None


@dataclass(frozen=True)
class ActionRun:
    """One action that ran while a job was held, stored with the step (job history): for
    `bash` the command as run, its exit code and the tails of its output."""

    job_id: str
    attempt: int
    state: str
    action: str
    started_at: float
    ended_at: float | None
    command: str | None = None
    exit_code: int | None = None
    stdout_tail: str = ""
    stderr_tail: str = ""


@dataclass
class Step:
    """Everything one step of a machine commits together (the outbox principle)."""

    machine_name: str
    at: float
    step: int
    from_state: str | None
    to_state: str | None
    event: str | None
    consumed_event_id: int | None = None
    consumed_event_status: EventStatus = "processed"
    #: The event an earlier step consumed whose handling this step ends (now `processed`).
    finished_event_id: int | None = None
    job_id: str | None = None
    job_ack: JobAck | None = None
    outbox: list[OutgoingEvent] = field(default_factory=list)
    realtime: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    #: A `restart: resume` machine's snapshot (codec JSON, see core.resume) as this step
    #: leaves it; written with the machine row. None for other machines and for steps that
    #: enter no state.
    snapshot: str | None = None
    #: The attempt of `job_id` the step belongs to (its transition and events are linked to
    #: it) and the actions that ran for a held job.
    attempt: int | None = None
    actions: list[ActionRun] = field(default_factory=list)


@dataclass(frozen=True)
class Claim:
    """A request to claim the next runnable job (or the given one) under a lease; up to
    `limit` jobs in claim order when no job_id is given."""

    job_type: str | None
    owner: str
    lease_seconds: float
    machine_type: str | None = None
    job_id: str | None = None
    limit: int = 1


@dataclass(frozen=True)
class Committed:
    """What a group commit did: per step, whether its job ack held (False: fenced, the
    step committed without ack and outbox), and the jobs its claim took, in claim order."""

    acked: tuple[bool, ...]
    jobs: tuple[Job, ...] = ()

    @property
    def job(self) -> Job | None:
        """The first claimed job, if any."""
        return self.jobs[0] if self.jobs else None


@dataclass(frozen=True)
class NewJob:
    """A job to enqueue (Store.add_jobs): what `add_job` takes, as one value."""

    job_type: str
    data: Any = None
    job_id: str | None = None
    machine_type: str | None = None
    priority: int = DEFAULT_PRIORITY
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    run_after: float | None = None
