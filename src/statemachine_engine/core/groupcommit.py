"""Group commit: consecutive steps of a machine share one transaction when nothing that takes
time or can be seen outside the process happens between them."""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from statemachine_engine.database.records import Claim, Job, Step
from statemachine_engine.database.store import Store

AfterCommit = Callable[[bool], None]

#: Most jobs one claim takes ahead for a worker whose jobs run only instant actions.
MAX_AHEAD = 32
#: Most steps one transaction carries: a long run of instant steps commits in slices, so
#: memory stays bounded and history is written as it happens.
MAX_STAGED = 256


def _nothing(released: Sequence[Job]) -> None:
    pass


@dataclass
class GroupCommit:
    """Steps staged by the engine and committed together at the next flush.

    The engine stages a step instead of committing it while the machine runs only instant
    actions (work in memory whose effects are themselves part of a step), and flushes before
    anything that takes time or is seen outside the process: any other action, parking,
    stopping, reading the events a staged step consumed or sent to itself. Each step stays
    all-or-nothing; nothing is rung or read back before its transaction has committed.

    A claim flushes the staged steps in its own transaction, so a worker that acknowledges
    job n and claims job n + 1 pays for one commit. A worker whose whole job cycle is instant
    claims ahead: each claim takes twice as many jobs as the last (up to MAX_AHEAD) and the
    next claims are served from them without a commit, so the steps of several jobs commit
    together. The first flush that is not a claim gives the jobs not started yet back to the
    queue in its transaction and starts again at one, so no job waits behind slow work.
    """

    store: Store
    #: Called after every flush that committed steps or released jobs, with the released.
    on_flushed: Callable[[Sequence[Job]], None] = _nothing
    _steps: list[Step] = field(default_factory=list)
    _after: list[AfterCommit] = field(default_factory=list)
    _ahead: deque[Job] = field(default_factory=deque)
    _ahead_for: Claim | None = None
    _batch: int = 1
    _consumes: bool = False
    _sends_to: set[str] = field(default_factory=set)

    @property
    def pending(self) -> bool:
        """True while staged steps wait for a flush."""
        return bool(self._steps)

    @property
    def held_ahead(self) -> tuple[Job, ...]:
        """Jobs claimed ahead and not started yet."""
        return tuple(self._ahead)

    def touches_events_of(self, machine: str) -> bool:
        """True when a staged step consumes an event or sends one to `machine` itself: then
        the machine must flush before it reads its own events."""
        return self._consumes or machine in self._sends_to

    def stage(self, step: Step, after: AfterCommit) -> None:
        """Keep `step` for the next flush; `after(acked)` runs once it has committed. A full
        transaction (MAX_STAGED steps) is flushed first."""
        if len(self._steps) >= MAX_STAGED:
            self.flush()
        self._steps.append(step)
        self._after.append(after)
        self._consumes = self._consumes or step.consumed_event_id is not None
        self._sends_to.update(out.target_machine for out in step.outbox)

    def claim(self, claim: Claim) -> Job | None:
        """The next job for `claim`: one claimed ahead by an earlier identical claim, else
        the store's next, claimed in one transaction with the staged steps."""
        if self._ahead and claim == self._ahead_for:
            return self._ahead.popleft()
        ahead = claim.job_id is None
        request = dataclasses.replace(claim, limit=self._batch) if ahead else claim
        jobs = self._commit(request)
        if ahead and len(jobs) == self._batch:
            self._batch = min(self._batch * 2, MAX_AHEAD)
        self._ahead.extend(jobs[1:])
        self._ahead_for = claim
        return jobs[0] if jobs else None

    def flush(self) -> None:
        """Commit the staged steps and give back the jobs claimed ahead, in one transaction.
        A StoreError leaves nothing staged (the transaction rolled back)."""
        if self._steps or self._ahead:
            self._batch = 1
            self._commit(None)

    def _commit(self, claim: Claim | None) -> tuple[Job, ...]:
        steps, after, release = self._steps, self._after, tuple(self._ahead)
        self._steps, self._after = [], []
        self._consumes = False
        self._sends_to.clear()
        self._ahead.clear()
        committed = self.store.commit_steps(steps, claim, release)
        for callback, acked in zip(after, committed.acked, strict=True):
            callback(acked)
        if steps or release:
            self.on_flushed(release)
        return committed.jobs
