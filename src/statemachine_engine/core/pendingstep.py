"""PendingStep: what the actions of the step in progress intend, committed with the step."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from statemachine_engine.database.records import JobAck, MachineEvent, OutgoingEvent

#: A line for the UI: its kind (`activity`, `error`, `unhandled_event`) and its fields.
Realtime = tuple[str, dict[str, Any]]


@dataclass
class PendingStep:
    """The intentions recorded while a step runs: the held job's outcome, events to send,
    the event taken, lines for the UI. The engine writes them as one Step, all or nothing."""

    job_ack: JobAck | None = None
    outbox: list[OutgoingEvent] = field(default_factory=list)
    consumed_event: MachineEvent | None = None
    realtime: list[Realtime] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """True when no action has recorded anything this step."""
        return (
            self.job_ack is None
            and not self.outbox
            and self.consumed_event is None
            and not self.realtime
        )
