"""Group commit: staged steps commit together, before anything that takes time or is seen."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar

import pytest

from statemachine_engine.actions.base import BaseAction
from statemachine_engine.core import ActionLoader
from statemachine_engine.core.groupcommit import GroupCommit
from statemachine_engine.database.records import Claim, Committed, Job, JobAck, Step
from statemachine_engine.database.sqlite import SQLiteStore
from statemachine_engine.errors import StoreError

StartMachine = Callable[..., Awaitable[Any]]
Until = Callable[..., Awaitable[None]]
OWNER = "worker@host:1"


def step(n: int, ack: JobAck | None = None) -> Step:
    return Step("worker", float(n), n, f"s{n - 1}", f"s{n}", "go", job_ack=ack)


class CountingStore:
    """The real store, counting group commits."""

    def __init__(self, store: SQLiteStore) -> None:
        self.real = store.commit_steps
        self.commits: list[tuple[int, bool]] = []

    def commit_steps(
        self, steps: Sequence[Step], claim: Claim | None = None, release: Sequence[Job] = ()
    ) -> Committed:
        self.commits.append((len(steps), claim is not None))
        return self.real(steps, claim, release)


def test_staged_steps_commit_at_the_flush_in_order(store: SQLiteStore) -> None:
    flushed: list[str] = []
    commits = GroupCommit(store, on_flushed=lambda released: flushed.append("flushed"))
    commits.stage(step(1), lambda acked: flushed.append(f"1 {acked}"))
    commits.stage(step(2), lambda acked: flushed.append(f"2 {acked}"))
    assert commits.pending and store.history() == []
    commits.flush()
    assert flushed == ["1 True", "2 True", "flushed"]
    assert [r.step for r in store.history()] == [2, 1]
    assert not commits.pending
    commits.flush()
    assert len(flushed) == 3, "nothing staged, no commit"


def test_a_claim_commits_the_staged_steps_with_it(store: SQLiteStore) -> None:
    counting = CountingStore(store)
    commits = GroupCommit(counting)  # type: ignore[arg-type]
    store.add_job("task", job_id="J1")
    store.add_job("task", job_id="J2")
    assert store.claim_job("task", OWNER, job_id="J1") is not None
    commits.stage(step(1, JobAck("J1", OWNER, "completed")), lambda acked: None)
    job = commits.claim(Claim("task", OWNER, 30.0))
    assert job is not None and job.job_id == "J2"
    assert counting.commits == [(1, True)]
    done = store.get_job("J1")
    assert done is not None and done.status == "completed"


def test_instant_cycles_claim_ahead_doubling_and_serve_claims_without_a_commit(
    store: SQLiteStore,
) -> None:
    counting = CountingStore(store)
    commits = GroupCommit(counting)  # type: ignore[arg-type]
    ids = [store.add_job("task", job_id=f"J{n:02}").job_id for n in range(1, 101)]
    claim = Claim("task", OWNER, 30.0)
    served = []
    while (job := commits.claim(claim)) is not None:
        served.append(job.job_id)
        commits.stage(step(len(served), JobAck(job.job_id, OWNER, "completed")), lambda a: None)
    assert served == ids, "claim order is kept"
    sizes = [1, 2, 4, 8, 16, 32, 32]  # 95 jobs in 7 commits, then the rest and an empty one
    assert len(counting.commits) == len(sizes) + 2
    assert store.count_jobs()["completed"] == 100


def test_a_flush_gives_back_the_jobs_claimed_ahead(store: SQLiteStore) -> None:
    released: list[str] = []
    commits = GroupCommit(store, on_flushed=lambda jobs: released.extend(j.job_id for j in jobs))
    for n in range(1, 6):
        store.add_job("task", job_id=f"J{n}")
    claim = Claim("task", OWNER, 30.0)
    first = commits.claim(claim)  # batch of 1: the cycle is not known to be instant yet
    assert first is not None and commits.held_ahead == ()
    commits.stage(step(1, JobAck(first.job_id, OWNER, "completed")), lambda a: None)
    second = commits.claim(claim)
    assert second is not None and [j.job_id for j in commits.held_ahead] == ["J3"]
    commits.stage(step(2), lambda a: None)
    commits.flush()  # e.g. before a bash action: J3 goes back, not counted as an attempt
    assert released == ["J3"] and commits.held_ahead == ()
    j3 = store.get_job("J3")
    assert j3 is not None and (j3.status, j3.attempts, j3.lease_owner) == ("pending", 0, None)
    held = store.get_job("J2")
    assert held is not None and (held.status, held.lease_owner) == ("processing", OWNER)
    commits.stage(step(3, JobAck(second.job_id, OWNER, "completed")), lambda a: None)
    third = commits.claim(claim)
    assert third is not None and third.job_id == "J3"
    assert commits.held_ahead == (), "after a flush that was not a claim, batches start at one"


def test_a_different_claim_gives_back_the_jobs_claimed_ahead(store: SQLiteStore) -> None:
    commits = GroupCommit(store)
    for n in range(1, 4):
        store.add_job("task", job_id=f"J{n}")
    store.add_job("other", job_id="O1")
    claim = Claim("task", OWNER, 30.0)
    assert commits.claim(claim) is not None
    assert commits.claim(claim) is not None and len(commits.held_ahead) == 1
    other = commits.claim(Claim("other", OWNER, 30.0))
    assert other is not None and other.job_id == "O1" and commits.held_ahead == ()
    j3 = store.get_job("J3")
    assert j3 is not None and j3.status == "pending"


def test_a_fenced_ack_is_reported_to_its_step_only(store: SQLiteStore) -> None:
    commits = GroupCommit(store)
    seen: list[bool] = []
    commits.stage(step(1, JobAck("nobody-holds-this", OWNER, "completed")), seen.append)
    commits.stage(step(2), seen.append)
    commits.flush()
    assert seen == [False, True]


def test_a_failed_flush_leaves_nothing_staged(store: SQLiteStore) -> None:
    class Broken:
        def commit_steps(
            self, steps: Sequence[Step], claim: Claim | None = None, release: Sequence[Job] = ()
        ) -> Committed:
            raise StoreError("disk full")

    commits = GroupCommit(Broken())  # type: ignore[arg-type]
    called: list[bool] = []
    commits.stage(step(1), called.append)
    with pytest.raises(StoreError):
        commits.flush()
    assert not commits.pending and called == []


class SeeStoreAction(BaseAction):
    """Not instant: records the state the store shows for this machine when it runs."""

    provides: ClassVar[frozenset[str] | None] = frozenset({"seen"})

    async def execute(self, context: dict[str, Any]) -> str | None:
        status = self.runtime.store.get_machine(self.runtime.machine_name)
        assert status is not None
        context.setdefault("seen", []).append((context["current_state"], status.current_state))
        return self.event("success", None)


class SeeStoreLoader(ActionLoader):
    def names(self) -> frozenset[str]:
        return super().names() | {"see_store"}

    def resolve(self, action_type: str) -> type[BaseAction]:
        return SeeStoreAction if action_type == "see_store" else super().resolve(action_type)


WORKER = """
name: worker
initial_state: waiting
transitions:
  - {from: waiting, to: processing, event: new_job}
  - {from: processing, to: checked, event: done}
  - {from: checked, to: waiting, event: ok}
actions:
  waiting:
    - {type: check_database_queue, job_type: task}
  processing:
    - {type: log, message: "job {job_id}", success: done}
  checked:
    - {type: SEE, success: ok}
"""


async def test_a_busy_worker_with_instant_actions_commits_once_per_claim(
    machine: StartMachine, store: SQLiteStore, monkeypatch: pytest.MonkeyPatch, until: Until
) -> None:
    counting = CountingStore(store)
    monkeypatch.setattr(store, "commit_steps", counting.commit_steps)
    jobs = [store.add_job("task").job_id for _ in range(20)]
    m = await machine(WORKER.replace("SEE", "log"), loader=SeeStoreLoader())
    await until(lambda: store.count_jobs()["completed"] == len(jobs))
    await m.engine.wait_parked()
    # claims of 1, 2, 4, 8 and 5 jobs, then the empty one; each carries the steps since the last
    assert len(counting.commits) == 6
    assert all(has_claim for _, has_claim in counting.commits)
    assert sum(n for n, _ in counting.commits) == 3 * len(jobs)
    assert len(store.history(machine="worker", limit=1000)) == 3 * len(jobs)


async def test_an_action_that_is_not_instant_runs_after_the_steps_before_it_commit(
    machine: StartMachine, store: SQLiteStore, until: Until
) -> None:
    job = store.add_job("task")
    m = await machine(WORKER.replace("SEE", "see_store"), loader=SeeStoreLoader())
    await until(lambda: (j := store.get_job(job.job_id)) is not None and j.status == "completed")
    await m.engine.wait_parked()
    assert m.engine.context["seen"] == [("checked", "checked")]
    status = store.get_machine("worker")
    assert status is not None and status.current_state == "waiting", "parking flushed"
