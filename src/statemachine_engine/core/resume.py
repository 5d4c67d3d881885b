"""`options.restart: resume` (DESIGN §13.6): the snapshot a resume machine commits with
every step that enters a state, and the start-up that continues from it.

A snapshot holds the state, the number of the step that entered it, when it was entered,
the context as it was then and the job held then. The entry time is kept on the store's
time line (the PostgreSQL server's clock, see database.postgres.clock), so a `timeout(N)`
keeps its deadline when the machine comes back on another host. On start the machine
re-enters that state with that context and step key, and runs its actions again."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from statemachine_engine.config.model import Transition
from statemachine_engine.database.codec import decode, encode
from statemachine_engine.database.records import Job, MachineStatus
from statemachine_engine.database.rows import machine_of
from statemachine_engine.errors import StoreError

if TYPE_CHECKING:
    from statemachine_engine.core.engine import StateMachineEngine

logger = logging.getLogger(__name__)

#: A timer that fires later than this after its deadline (the machine was down, or busy)
#: is logged at WARNING with how late it was.
LATE_WARNING = 1.0
#: Context keys the engine sets itself; not part of what a snapshot restores.
_ENGINE_KEYS = ("machine_name", "current_state", "step_key")


@dataclass(frozen=True)
class Snapshot:
    """Where a resume machine was when its last committed step entered a state."""

    state: str
    step: int
    #: When the state was entered, on the store's time line.
    entered_at: float
    context: Mapping[str, Any] = field(default_factory=dict)
    job_id: str | None = None
    #: The state where the held job was claimed (None: claimed by id or handed over).
    job_state: str | None = None
    job_by_id: bool = False
    #: The event whose consuming step entered the state (its handling goes on).
    event_id: int | None = None

    def encode(self) -> str:
        return encode(
            {
                "state": self.state,
                "step": self.step,
                "entered_at": self.entered_at,
                "context": dict(self.context),
                "job": None
                if self.job_id is None
                else {"id": self.job_id, "state": self.job_state, "by_id": self.job_by_id},
                "event_id": self.event_id,
            },
            what="machine snapshot",
        )

    @classmethod
    def decode(cls, text: str) -> Snapshot:
        """The snapshot `encode` wrote; ValueError when `text` is not one."""
        try:
            value = decode(text)
            job = value.get("job") or {}
            snapshot = cls(
                state=str(value["state"]),
                step=int(value["step"]),
                entered_at=float(value["entered_at"]),
                context=dict(value["context"]),
                job_id=None if job.get("id") is None else str(job["id"]),
                job_state=None if job.get("state") is None else str(job["state"]),
                job_by_id=bool(job.get("by_id", False)),
                event_id=None if value.get("event_id") is None else int(value["event_id"]),
            )
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ValueError(f"unreadable machine snapshot: {exc}") from None
        return snapshot


class Resume:
    """The snapshots of one `restart: resume` machine: written with its steps, read once at
    start-up to continue where its last committed step left it."""

    def __init__(self, engine: StateMachineEngine) -> None:
        self.engine = engine
        self._unstorable: set[str] = set()

    def offset(self) -> float:
        """The store's time minus the engine's (0 unless the store reads the database
        server's clock): entry times are stored on the store's time line."""
        return self.engine.store.clock.now() - self.engine.clock.now()

    def snapshot(self, state: str, step: int, entered_at: float, *, holds_job: bool) -> str:
        """The encoded snapshot of entering `state` at engine time `entered_at` with the
        engine's current context (and its job, when it holds one after this step)."""
        engine = self.engine
        runtime = engine.runtime
        job = runtime.job if holds_job else None
        context = {k: v for k, v in engine.context.items() if k not in _ENGINE_KEYS}
        snapshot = Snapshot(
            state=state,
            step=step,
            entered_at=entered_at + self.offset(),
            context=context,
            job_id=None if job is None else job.job_id,
            job_state=runtime.job_state if job is not None else None,
            job_by_id=runtime.job_by_id if job is not None else False,
            event_id=None if runtime.in_hand is None else runtime.in_hand.id,
        )
        try:
            return snapshot.encode()
        except StoreError:
            return replace(snapshot, context=self._storable(context)).encode()

    def _storable(self, context: Mapping[str, Any]) -> dict[str, Any]:
        """`context` without the keys that cannot be stored (not JSON, too large), each named
        once per run at ERROR: a restart resumes without them."""
        kept: dict[str, Any] = {}
        for key, value in context.items():
            try:
                encode(value, what=f"context key {key!r}")
            except StoreError as exc:
                if key not in self._unstorable:
                    self._unstorable.add(key)
                    logger.error(
                        "[%s] %s; it is left out of the resume snapshot",
                        self.engine.machine_name,
                        exc,
                    )
                continue
            kept[key] = value
        try:
            encode(kept, what="the context")
        except StoreError as exc:
            logger.error(
                "[%s] %s; the resume snapshot keeps no context", self.engine.machine_name, exc
            )
            return {}
        return kept

    def at_start(self, previous: MachineStatus | None, resumed: Snapshot | None) -> str:
        """The snapshot registration writes: the resumed one, or the initial state entered
        at the step number a fresh run starts from."""
        if resumed is not None:
            return resumed.encode()
        engine = self.engine
        step = previous.step + 1 if previous is not None else 0
        return self.snapshot(engine.state, step, engine.entered_at, holds_job=False)

    def restore(self, previous: MachineStatus | None) -> Snapshot | None:
        """Before registration: put the engine back where the last committed step left it
        (state, context, entry time, step number) and return that snapshot; None to start
        over in the initial state (a first start, a finished run, a state the definition no
        longer has)."""
        engine = self.engine
        name = engine.machine_name
        text = engine.store.machine_snapshot(name) if previous is not None else None
        if previous is None or text is None:
            if previous is not None:
                logger.warning(
                    "[%s] restart: resume, but no snapshot was stored (last run without"
                    " restart: resume?); starting in %s",
                    name,
                    engine.state,
                )
            return None
        try:
            snapshot = Snapshot.decode(text)
        except ValueError as exc:
            logger.warning("[%s] %s; starting in %s", name, exc, engine.state)
            return None
        definition = engine.definition
        if snapshot.state not in definition.states:
            logger.warning(
                "[%s] cannot resume in state %s, which %s no longer declares; starting in %s",
                name,
                snapshot.state,
                definition.source,
                engine.state,
            )
            return None
        if previous.status == "finished" and definition.is_final(snapshot.state):
            logger.info("[%s] last run finished in %s; starting over", name, snapshot.state)
            return None
        snapshot = self._job_check(snapshot)
        self._event_in_hand(snapshot)
        engine.state = snapshot.state
        engine.entered_at = snapshot.entered_at - self.offset()
        engine.context.update(snapshot.context)
        engine.context["current_state"] = snapshot.state
        logger.info(
            "[%s] resuming in state %s (step %d, entered %.3f s ago)",
            name,
            snapshot.state,
            snapshot.step,
            engine.clock.now() - engine.entered_at,
        )
        return snapshot

    def _job_check(self, snapshot: Snapshot) -> Snapshot:
        """A snapshot that held a job the machine no longer holds (released on a stop,
        taken by another worker after its lease ran out, ended by an operator) resumes in
        the state that claimed it, as a lost lease would have sent it there."""
        if snapshot.job_id is None:
            return snapshot
        job = self.engine.store.get_job(snapshot.job_id)
        if self._still_ours(job):
            return snapshot
        found = "gone" if job is None else f"{job.status}, held by {job.lease_owner or 'nobody'}"
        name = self.engine.machine_name
        target = snapshot.job_state
        if target is None or target not in self.engine.definition.states:
            logger.warning(
                "[%s] job %s is no longer held by this machine (%s); resuming in %s without it",
                name,
                snapshot.job_id,
                found,
                snapshot.state,
            )
            return _without_job(snapshot, snapshot.state, snapshot.entered_at)
        logger.warning(
            "[%s] job %s is no longer held by this machine (%s); resuming in %s, where it"
            " was claimed, instead of %s",
            name,
            snapshot.job_id,
            found,
            target,
            snapshot.state,
        )
        return _without_job(snapshot, target, self.engine.store.clock.now())

    def _still_ours(self, job: Job | None) -> bool:
        """The job is still `processing` under a lease of this machine name (an earlier run
        of it: registration makes sure that run is gone)."""
        name = self.engine.machine_name
        return (
            job is not None
            and job.status == "processing"
            and machine_of(job.lease_owner or "") == name
        )

    def _event_in_hand(self, snapshot: Snapshot) -> None:
        """The event whose consuming step entered the snapshot's state stays in hand (its
        handling goes on in the redo; the next step ends it) instead of being delivered
        again as an interrupted one."""
        if snapshot.event_id is None:
            return
        engine = self.engine
        handling = engine.store.list_events(
            target=engine.machine_name, status="handling", limit=1000
        )
        engine.runtime.in_hand = next((e for e in handling if e.id == snapshot.event_id), None)

    def keep_at_stop(self) -> bool:
        """On a stop, a resume machine keeps its job instead of giving it back: the next
        start holds it again while its lease is still this machine's (after the lease ends
        another worker may take it, as after a crash). True when it held one."""
        runtime = self.engine.runtime
        job = runtime.job
        if job is None:
            return False
        logger.info(
            "[%s] keeping job %s for the next start (restart: resume); its lease ends in %g s",
            self.engine.machine_name,
            job.job_id,
            runtime.policy.lease_for(job.job_type),
        )
        runtime.drop_job(self.engine.context)
        return True

    def rehold(self, snapshot: Snapshot) -> None:
        """After registration: take over the lease of the snapshot's job from the earlier
        run and hold it again, in the state that claimed it."""
        engine = self.engine
        runtime = engine.runtime
        if snapshot.job_id is None or runtime.job is not None:
            return
        job = engine.store.get_job(snapshot.job_id)
        lease = runtime.policy.lease_for(job.job_type if job is not None else None)
        owner = job.lease_owner if job is not None else None
        if (
            job is None
            or owner is None
            or not self._still_ours(job)
            or not engine.store.heartbeat(job.job_id, owner, lease, to=runtime.owner)
        ):
            logger.warning(
                "[%s] job %s was taken while this machine started; running %s without it",
                engine.machine_name,
                snapshot.job_id,
                snapshot.state,
            )
            return
        held = engine.store.get_job(job.job_id) or job
        runtime.hold_job(held, snapshot.job_state, engine.context, by_id=snapshot.job_by_id)
        logger.info(
            "[%s] holding job %s again (lease taken over from %s)",
            engine.machine_name,
            job.job_id,
            owner,
        )


def _without_job(snapshot: Snapshot, state: str, entered_at: float) -> Snapshot:
    return replace(snapshot, state=state, entered_at=entered_at, job_id=None, job_state=None)


def late_by(engine: StateMachineEngine, due: float, transition: Transition) -> float:
    """How late (seconds) the timer `transition`, due at engine time `due`, fires now; over
    LATE_WARNING it is logged (it fell due while the machine was down, or busy)."""
    late = round(max(0.0, engine.clock.now() - due), 3)
    if late > LATE_WARNING:
        logger.warning(
            "[%s] timer %s of state %s fires %.3f s late",
            engine.machine_name,
            transition.event,
            engine.state,
            late,
        )
    return late
