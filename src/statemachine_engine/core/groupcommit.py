"""Group commit: consecutive steps of a machine share one transaction when nothing that takes
time or can be seen outside the process happens between them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from statemachine_engine.database.records import Claim, Job, Step
from statemachine_engine.database.store import Store

AfterCommit = Callable[[bool], None]


def _nothing() -> None:
    pass


@dataclass
class GroupCommit:
    """Steps staged by the engine and committed together at the next flush.

    The engine stages a step instead of committing it while the machine runs only instant
    actions (work in memory whose effects are themselves part of a step), and flushes before
    anything that takes time or is seen outside the process: any other action, parking,
    stopping, reading the events a staged step consumed or sent. Each step stays
    all-or-nothing; nothing is reported (logged as done, rung, acknowledged) before its
    transaction has committed. A claim flushes the staged steps in its own transaction, so a
    worker that acknowledges job n and claims job n + 1 pays for one commit.
    """

    store: Store
    #: Called once after every flush that committed at least one step.
    on_flushed: Callable[[], None] = _nothing
    _steps: list[Step] = field(default_factory=list)
    _after: list[AfterCommit] = field(default_factory=list)

    @property
    def pending(self) -> bool:
        """True while staged steps wait for a flush."""
        return bool(self._steps)

    @property
    def touches_events(self) -> bool:
        """True when a staged step consumes or sends an event (reading events must flush)."""
        return any(s.consumed_event_id is not None or s.outbox for s in self._steps)

    def stage(self, step: Step, after: AfterCommit) -> None:
        """Keep `step` for the next flush; `after(acked)` runs once it has committed."""
        self._steps.append(step)
        self._after.append(after)

    def flush(self, claim: Claim | None = None) -> Job | None:
        """Commit the staged steps, then `claim` (if given), in one transaction; returns the
        claimed job. A StoreError leaves nothing staged (the transaction rolled back)."""
        if not self._steps and claim is None:
            return None
        steps, after = self._steps, self._after
        self._steps, self._after = [], []
        committed = self.store.commit_steps(steps, claim)
        for callback, acked in zip(after, committed.acked, strict=True):
            callback(acked)
        if steps:
            self.on_flushed()
        return committed.job
