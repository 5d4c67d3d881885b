"""The step commit, written once for every dialect: a transition, its job acknowledgement,
the event it consumed and its outbox in one transaction; several steps of one machine, the
jobs it gives back and its next claim in one group commit."""

from __future__ import annotations

from collections.abc import Sequence

from statemachine_engine.clock import Clock
from statemachine_engine.database.attempts import record_action
from statemachine_engine.database.events import insert_event
from statemachine_engine.database.jobs import (
    claim_next,
    claimable,
    complete_held_many,
    fail_held,
    release_held,
)
from statemachine_engine.database.records import Claim, Committed, Job, Step
from statemachine_engine.database.rows import machine_of
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
            acked = _commit_all(tx, steps)
            for job in release:
                release_held(tx, job.job_id, job.lease_owner or "", now)
            jobs = claim_next(tx, claim, now) if claim is not None else []
            return Committed(acked, tuple(jobs))

        return self.conn.write(work)

    def _claimable(self, claim: Claim, now: float) -> bool:
        return self.conn.read(lambda tx: claimable(tx, claim, now))


def _commit_all(tx: Tx, steps: Sequence[Step]) -> tuple[bool, ...]:
    """Write `steps` in order inside the caller's transaction; whether each one's job
    acknowledgement took (a fenced step commits its transition but not its outbox).

    The completions of the whole group are one statement, the machine row is written once
    per machine (as its last step left it), and the history and stream rows are appended
    (one statement per table when the transaction ends)."""
    completed = complete_held_many(
        tx,
        [
            (s.job_ack.job_id, s.job_ack.owner, s.job_ack.result, s.at)
            for s in steps
            if s.job_ack is not None and s.job_ack.outcome == "completed"
        ],
    )
    acked = tuple(_commit_step(tx, step, completed) for step in steps)
    _move_machines(tx, steps)
    return acked


def _commit_step(tx: Tx, step: Step, completed: set[str]) -> bool:
    acked = _ack(tx, step, completed)
    held = (step.job_id, step.attempt) if step.job_id and step.attempt else None
    if acked:
        for out in step.outbox:
            insert_event(tx, out, step.machine_name, step.at, held=held)
    if step.finished_event_id is not None:
        tx.run("event_finish", {"at": step.at, "id": step.finished_event_id})
    if step.consumed_event_id is not None:
        args = {"status": step.consumed_event_status, "at": step.at, "id": step.consumed_event_id}
        tx.run("event_consume", args)
    if step.to_state is not None:
        _record_transition(tx, step)
    for kind, payload in step.realtime:
        insert_realtime(tx, step.machine_name, kind, payload, step.at)
    for run in step.actions:
        record_action(tx, run, step.machine_name)
    return acked


def _ack(tx: Tx, step: Step, completed: set[str]) -> bool:
    ack = step.job_ack
    if ack is None:
        return True
    if ack.outcome == "completed":
        if ack.job_id not in completed:
            return False
        notice = {"job_id": ack.job_id, "status": "completed"}
        insert_realtime(tx, machine_of(ack.owner), "job", notice, step.at)
        return True
    status = fail_held(tx, ack.job_id, ack.owner, ack.error or "error", ack.retry_delay, step.at)
    return status is not None


def _move_machines(tx: Tx, steps: Sequence[Step]) -> None:
    """Write each machine's row once, as the last of its steps that moved it left it."""
    last: dict[str, Step] = {}
    entered: dict[str, float] = {}
    for step in steps:
        if step.to_state is None:
            continue
        last[step.machine_name] = step
        if step.from_state != step.to_state:
            entered[step.machine_name] = step.at
    for name, step in last.items():
        tx.run(
            "machine_move",
            {
                "machine": name,
                "step": step.step,
                "from_state": step.from_state,
                "to_state": step.to_state,
                "event": step.event,
                "at": step.at,
                "job_id": step.job_id if step.job_ack is None else None,
                "entered_at": entered.get(name),
                "snapshot": step.snapshot,
            },
        )


def _record_transition(tx: Tx, step: Step) -> None:
    assert step.to_state is not None
    tx.append(
        "transition_insert_rows",
        {
            "machine": step.machine_name,
            "step": step.step,
            "from_state": step.from_state,
            "to_state": step.to_state,
            "event": step.event,
            "job_id": step.job_id,
            "attempt": step.attempt,
            "event_id": step.consumed_event_id,
            "at": step.at,
        },
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
