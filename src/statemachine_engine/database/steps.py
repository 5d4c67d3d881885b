"""The step commit, written once for every dialect: a transition, its job acknowledgement,
the event it consumed and its outbox in one transaction; several steps of one machine, the
jobs it gives back and its next claim in one group commit."""

from __future__ import annotations

from collections.abc import Sequence

from statemachine_engine.clock import Clock
from statemachine_engine.database.events import insert_event
from statemachine_engine.database.jobs import (
    claim_next,
    claimable,
    complete_held,
    fail_held,
    release_held,
)
from statemachine_engine.database.records import Claim, Committed, Job, Step
from statemachine_engine.database.stream import insert_realtime
from statemachine_engine.database.tx import Connection, Tx


class StepLog:
    """`commit_step` and `commit_steps` of the Store contract."""

    conn: Connection
    clock: Clock

    def commit_step(self, step: Step) -> bool:
        return self.commit_steps((step,)).acked[0]

    def commit_steps(
        self,
        steps: Sequence[Step],
        claim: Claim | None = None,
        release: Sequence[Job] = (),
    ) -> Committed:
        now = self.clock.now()
        # A bare claim (an idle worker's re-check): a read first, the write only when there
        # is something to take.
        if claim is not None and not steps and not release and not self._claimable(claim, now):
            return Committed((), ())

        def work(tx: Tx) -> Committed:
            acked = tuple(_commit_step(tx, step) for step in steps)
            for job in release:
                release_held(tx, job.job_id, job.lease_owner or "", now)
            jobs = claim_next(tx, claim, now) if claim is not None else []
            return Committed(acked, tuple(jobs))

        return self.conn.write(work)

    def _claimable(self, claim: Claim, now: float) -> bool:
        return self.conn.read(lambda tx: claimable(tx, claim, now))


def _commit_step(tx: Tx, step: Step) -> bool:
    acked = _ack(tx, step)
    if acked:
        for out in step.outbox:
            insert_event(tx, out, step.machine_name, step.at)
    if step.finished_event_id is not None:
        tx.run("event_finish", {"at": step.at, "id": step.finished_event_id})
    if step.consumed_event_id is not None:
        args = {"status": step.consumed_event_status, "at": step.at, "id": step.consumed_event_id}
        tx.run("event_consume", args)
    if step.to_state is not None:
        _record_transition(tx, step)
    for kind, payload in step.realtime:
        insert_realtime(tx, step.machine_name, kind, payload, step.at)
    return acked


def _ack(tx: Tx, step: Step) -> bool:
    ack = step.job_ack
    if ack is None:
        return True
    if ack.outcome == "completed":
        return complete_held(tx, ack.job_id, ack.owner, ack.result, step.at)
    status = fail_held(tx, ack.job_id, ack.owner, ack.error or "error", ack.retry_delay, step.at)
    return status is not None


def _record_transition(tx: Tx, step: Step) -> None:
    assert step.to_state is not None
    moved = {
        "machine": step.machine_name,
        "step": step.step,
        "from_state": step.from_state,
        "to_state": step.to_state,
        "event": step.event,
        "at": step.at,
    }
    tx.run(
        "machine_move",
        {
            **moved,
            "job_id": step.job_id if step.job_ack is None else None,
            "changed": step.from_state != step.to_state,
        },
    )
    tx.run(
        "transition_insert", {**moved, "job_id": step.job_id, "event_id": step.consumed_event_id}
    )
    notice = {
        "machine_name": step.machine_name,
        "from_state": step.from_state,
        "to_state": step.to_state,
        "event": step.event,
        "step": step.step,
        "job_id": step.job_id,
    }
    insert_realtime(tx, step.machine_name, "state_change", notice, step.at)
