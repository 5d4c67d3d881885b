"""PendingStep: what the actions of the step in progress intend, committed with the step."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from statemachine_engine.database.records import ActionRun, JobAck, MachineEvent, OutgoingEvent

#: Bytes of stdout and of stderr a command's record keeps (the end of each).
TAIL_BYTES = 8 * 1024


def tail_of(text: str, limit: int = TAIL_BYTES) -> str:
    """The last `limit` bytes of `text` (UTF-8), starting at a whole character."""
    data = text.encode("utf-8", "surrogateescape")
    if len(data) <= limit:
        return text
    return data[-limit:].decode("utf-8", "ignore")


#: A line for the UI: its kind (`activity`, `error`, `unhandled_event`) and its fields.
Realtime = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class CommandRun:
    """What the `bash` action that just ran did, for the job history: the command as run,
    its exit code and the tails of its output (bounded)."""

    command: str
    exit_code: int | None
    stdout_tail: str
    stderr_tail: str


@dataclass
class PendingStep:
    """The intentions recorded while a step runs: the held job's outcome, events to send,
    the event taken, lines for the UI. The engine writes them as one Step, all or nothing."""

    job_ack: JobAck | None = None
    outbox: list[OutgoingEvent] = field(default_factory=list)
    consumed_event: MachineEvent | None = None
    realtime: list[Realtime] = field(default_factory=list)
    #: The actions that ran for the held job (job history), and the command the action
    #: running now ran, taken into its record when it ends.
    actions: list[ActionRun] = field(default_factory=list)
    command: CommandRun | None = None

    @property
    def empty(self) -> bool:
        """True when no action has recorded anything this step."""
        return (
            self.job_ack is None
            and not self.outbox
            and self.consumed_event is None
            and not self.realtime
        )
