"""Runtime: what a running machine offers its actions (store, clock, job, outbox)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from statemachine_engine.clock import Clock
from statemachine_engine.config.model import MachineDefinition
from statemachine_engine.database.records import Job, JobAck, MachineEvent, OutgoingEvent
from statemachine_engine.database.store import Store

logger = logging.getLogger(__name__)


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
    actions_dirs: tuple[Path, ...] = ()
    lease_seconds: float = 30.0
    backoff_base: float = 1.0
    job: Job | None = None
    job_state: str | None = None
    job_ack: JobAck | None = None
    outbox: list[OutgoingEvent] = field(default_factory=list)
    consumed_event: MachineEvent | None = None
    realtime: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def hold_job(self, job: Job, state: str, context: dict[str, Any]) -> None:
        """Make `job` the machine's current job, claimed in `state`."""
        self.job = job
        self.job_state = state
        self.job_ack = None
        view = job.as_context()
        context["current_job"] = view
        context["job_id"] = job.job_id
        context["job_type"] = job.job_type
        context["data"] = job.data

    def complete_job(self, result: Any = None) -> bool:
        """Mark the current job completed when the step commits; False if there is none."""
        if self.job is None:
            return False
        self.job_ack = JobAck(self.job.job_id, self.owner, "completed", result=result)
        return True

    def fail_job(self, error: str, *, retry: bool = True) -> bool:
        """Fail this attempt of the current job when the step commits (retry with backoff)."""
        if self.job is None:
            return False
        delay = self.backoff_base * (2 ** max(self.job.attempts - 1, 0)) if retry else None
        self.job_ack = JobAck(self.job.job_id, self.owner, "failed", error=error,
                              retry_delay=delay)
        return True

    def send(self, target: str, event_type: str, payload: Any = None,
             job_id: str | None = None) -> None:
        """Queue an event for another machine; written in the same transaction as the step."""
        self.outbox.append(OutgoingEvent(target, event_type, payload, job_id))

    def consume(self, event: MachineEvent, context: dict[str, Any]) -> None:
        """Take `event` as the event being handled; marked processed when the step commits."""
        self.consumed_event = event
        context["event_data"] = event.as_context()
        spec = self.definition.events.get(event.event_type)
        if spec is not None and spec.context_map:
            from statemachine_engine.core.interpolate import resolve
            from statemachine_engine.errors import PlaceholderError

            for key, path in spec.context_map.items():
                try:
                    context[key] = resolve(path, context)
                except PlaceholderError:
                    logger.warning("%s: event %s has no %s for context key %s",
                                   self.machine_name, event.event_type, path, key)

    def activity(self, message: str, level: str = "info") -> None:
        """A line for the UI's activity feed, committed with the step."""
        self.realtime.append(("activity", {"machine_name": self.machine_name,
                                           "message": message, "level": level}))

    def take_pending(self) -> tuple[JobAck | None, list[OutgoingEvent], MachineEvent | None,
                                    list[tuple[str, dict[str, Any]]]]:
        """Hand the step's intentions to the engine and start a fresh step."""
        pending = (self.job_ack, self.outbox, self.consumed_event, self.realtime)
        self.job_ack, self.outbox, self.consumed_event, self.realtime = None, [], None, []
        return pending
