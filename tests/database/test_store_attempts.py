"""Job history in the store (issue 16 item 1), on every backend: one row per attempt written
with the claim and the acknowledgement, the actions that ran, the transitions and events of
each attempt, and retention."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from statemachine_engine.clock import VirtualClock
from statemachine_engine.core.pendingstep import TAIL_BYTES, tail_of
from statemachine_engine.database.attempts import AttemptRecord, JobTimeline
from statemachine_engine.database.records import (
    ActionRun,
    Claim,
    Job,
    JobAck,
    OutgoingEvent,
    Step,
)
from statemachine_engine.database.store import Store

RawSql = Callable[[Store, str], list[dict[str, Any]]]
OWNER_A = "worker-a@host:1"
OWNER_B = "worker-b@host:2"


def timeline(store: Store, job_id: str) -> JobTimeline:
    found = store.job_timeline(job_id)
    assert found is not None
    return found


def bash_run(job: Job, state: str, at: float, code: int, out: str = "", err: str = "") -> ActionRun:
    return ActionRun(
        job.job_id,
        job.attempts,
        state,
        "bash",
        at,
        at + 0.5,
        command=f"./run.sh {job.job_id}",
        exit_code=code,
        stdout_tail=tail_of(out),
        stderr_tail=tail_of(err),
    )


def run_job(
    store: Store,
    clock: VirtualClock,
    job: Job,
    owner: str,
    *,
    code: int,
    out: str = "",
    err: str = "",
    retry_delay: float | None = 1.0,
) -> bool:
    """The steps a worker commits for `job`: claimed (idle -> busy), its bash ran, then
    back to idle completing it or failing the attempt; whether the ack held."""
    name = owner.split("@")[0]
    now = clock.now()
    store.commit_step(
        Step(name, now, 1, "idle", "busy", "new_job", job_id=job.job_id, attempt=job.attempts)
    )
    clock.advance(1)
    if code == 0:
        ack = JobAck(job.job_id, owner, "completed", result={"ok": True})
    else:
        error = f"exit code {code}: {err}"[:200]
        ack = JobAck(job.job_id, owner, "failed", error=error, retry_delay=retry_delay)
    return store.commit_step(
        Step(
            name,
            clock.now(),
            2,
            "busy",
            "idle",
            "job_done" if code == 0 else "error",
            job_id=job.job_id,
            job_ack=ack,
            attempt=job.attempts,
            outbox=[OutgoingEvent("reporter", "done", {"id": job.job_id})],
            actions=[bash_run(job, "busy", now, code, out, err)],
        )
    )


def only(attempts: list[AttemptRecord]) -> AttemptRecord:
    assert len(attempts) == 1, attempts
    return attempts[0]


class TestAttempts:
    def test_a_success_records_one_completed_attempt(
        self, store: Store, clock: VirtualClock
    ) -> None:
        store.add_job("render", job_id="J1")
        start = clock.now()
        job = store.claim_job("render", OWNER_A)
        assert job is not None
        assert run_job(store, clock, job, OWNER_A, code=0, out="rendered\n")

        found = timeline(store, "J1")
        assert found.job.status == "completed"
        attempt = only(found.attempts)
        assert (attempt.attempt, attempt.worker, attempt.outcome) == (1, "worker-a", "completed")
        assert attempt.started_at == start
        assert attempt.ended_at == clock.now()
        assert attempt.error is None
        assert [(t["from_state"], t["to_state"]) for t in attempt.transitions] == [
            ("idle", "busy"),
            ("busy", "idle"),
        ]
        assert [(e["target_machine"], e["event_type"]) for e in attempt.events_sent] == [
            ("reporter", "done")
        ]
        action = only_row(attempt.actions)
        assert action["action"] == "bash"
        assert action["state"] == "busy"
        assert action["command"] == "./run.sh J1"
        assert action["exit_code"] == 0
        assert action["stdout_tail"] == "rendered\n"
        assert action["stderr_tail"] == ""
        assert action["ended_at"] == start + 0.5

    def test_a_failing_command_keeps_exit_code_and_stderr(
        self, store: Store, clock: VirtualClock
    ) -> None:
        store.add_job("render", job_id="J1", max_attempts=1)
        job = store.claim_job("render", OWNER_A)
        assert job is not None
        err = "bad input\nsecond line\n"
        assert run_job(store, clock, job, OWNER_A, code=3, err=err, retry_delay=None)

        attempt = only(timeline(store, "J1").attempts)
        assert attempt.outcome == "failed"
        assert attempt.error is not None and attempt.error.startswith("exit code 3: bad input")
        action = only_row(attempt.actions)
        assert (action["exit_code"], action["stderr_tail"]) == (3, err)

    def test_long_output_is_bounded_to_its_last_8_kib(
        self, store: Store, clock: VirtualClock
    ) -> None:
        store.add_job("render", job_id="J1", max_attempts=1)
        job = store.claim_job("render", OWNER_A)
        assert job is not None
        out = "".join(f"line {i}\n" for i in range(20_000))
        err = "é" * 10_000 + "END"
        run_job(store, clock, job, OWNER_A, code=3, out=out, err=err, retry_delay=None)

        action = only_row(only(timeline(store, "J1").attempts).actions)
        assert len(action["stdout_tail"].encode()) == TAIL_BYTES
        assert out.endswith(action["stdout_tail"])
        assert action["stdout_tail"].endswith("line 19999\n")
        assert len(action["stderr_tail"].encode()) <= TAIL_BYTES
        assert action["stderr_tail"].endswith("ééEND")
        assert err.endswith(action["stderr_tail"])

    def test_a_retry_is_a_second_attempt(self, store: Store, clock: VirtualClock) -> None:
        store.add_job("render", job_id="J1")
        first = store.claim_job("render", OWNER_A)
        assert first is not None
        run_job(store, clock, first, OWNER_A, code=3, err="flaky\n", retry_delay=1.0)
        clock.advance(1)
        second = store.claim_job("render", OWNER_B)
        assert second is not None and second.attempts == 2
        run_job(store, clock, second, OWNER_B, code=0)

        found = timeline(store, "J1")
        assert [(a.attempt, a.worker, a.outcome) for a in found.attempts] == [
            (1, "worker-a", "failed"),
            (2, "worker-b", "completed"),
        ]
        one, two = found.attempts
        assert one.ended_at is not None and one.ended_at < two.started_at
        assert [a["exit_code"] for a in one.actions] == [3]
        assert [a["exit_code"] for a in two.actions] == [0]
        assert {t["machine_name"] for t in one.transitions} == {"worker-a"}
        assert {t["machine_name"] for t in two.transitions} == {"worker-b"}
        assert [len(one.events_sent), len(two.events_sent)] == [1, 1]

    def test_lease_loss_ends_the_attempt_and_fences_the_late_worker(
        self, store: Store, clock: VirtualClock
    ) -> None:
        store.add_job("render", job_id="J1")
        lost = store.claim_job("render", OWNER_A, lease_seconds=5)
        assert lost is not None
        clock.advance(6)
        taken = store.claim_job("render", OWNER_B, lease_seconds=5)
        assert taken is not None
        # The first worker finishes late: its ack is fenced, its steps still belong to it.
        assert not run_job(store, clock, lost, OWNER_A, code=0)
        run_job(store, clock, taken, OWNER_B, code=0)

        one, two = timeline(store, "J1").attempts
        assert (one.outcome, two.outcome) == ("lease_lost", "completed")
        assert one.error == "lease of worker-a@host:1 expired on attempt 1"
        assert one.ended_at == two.started_at
        assert {t["machine_name"] for t in one.transitions} == {"worker-a"}
        assert [a["exit_code"] for a in one.actions] == [0]
        assert one.events_sent == []  # fenced: its outbox was not written
        assert {t["machine_name"] for t in two.transitions} == {"worker-b"}

    def test_a_lease_lost_on_the_last_attempt_fails_the_job(
        self, store: Store, clock: VirtualClock
    ) -> None:
        store.add_job("render", job_id="J1", max_attempts=1)
        assert store.claim_job("render", OWNER_A, lease_seconds=5) is not None
        clock.advance(6)
        assert store.claim_job("render", OWNER_B) is None
        attempt = only(timeline(store, "J1").attempts)
        assert (attempt.outcome, attempt.ended_at) == ("lease_lost", clock.now())

    def test_a_release_cancels_the_attempt_and_the_next_claim_starts_another(
        self, store: Store, clock: VirtualClock
    ) -> None:
        store.add_job("render", job_id="J1")
        assert store.claim_job("render", OWNER_A) is not None
        assert store.release_job("J1", OWNER_A)
        again = store.claim_job("render", OWNER_B)
        assert again is not None and again.attempts == 1
        one, two = timeline(store, "J1").attempts
        assert (one.attempt, one.outcome) == (1, "cancelled")
        assert one.error == "released by worker-a@host:1 (not counted)"
        assert (two.attempt, two.outcome, two.worker) == (1, "running", "worker-b")
        assert two.ended_at is None

    def test_releasing_by_owner_prefix_cancels_attempts(self, store: Store) -> None:
        store.add_job("render", job_id="J1")
        assert store.claim_job("render", OWNER_A) is not None
        assert store.release_jobs("worker-a@") == 1
        assert only(timeline(store, "J1").attempts).outcome == "cancelled"

    def test_a_hand_over_moves_the_attempt(self, store: Store) -> None:
        store.add_job("render", job_id="J1")
        assert store.claim_job("render", OWNER_A) is not None
        assert store.heartbeat("J1", OWNER_A, 30, to="child@host:9")
        attempt = only(timeline(store, "J1").attempts)
        assert (attempt.worker, attempt.outcome) == ("child", "running")
        assert store.complete_job("J1", "child@host:9")
        assert only(timeline(store, "J1").attempts).outcome == "completed"

    def test_group_commit_claims_several_and_completes_them(
        self, store: Store, clock: VirtualClock
    ) -> None:
        for n in range(3):
            store.add_job("render", job_id=f"J{n}")
        done = store.commit_steps([], Claim("render", OWNER_A, 30, limit=3))
        assert [j.job_id for j in done.jobs] == ["J0", "J1", "J2"]
        acks = [
            Step(
                "worker-a",
                clock.now(),
                n,
                "busy",
                "idle",
                "job_done",
                job_id=job.job_id,
                attempt=1,
                job_ack=JobAck(job.job_id, OWNER_A, "completed"),
            )
            for n, job in enumerate(done.jobs)
        ]
        assert store.commit_steps(acks).acked == (True, True, True)
        for n in range(3):
            attempt = only(timeline(store, f"J{n}").attempts)
            assert attempt.outcome == "completed"
            assert len(attempt.transitions) == 1

    def test_unknown_job_has_no_timeline(self, store: Store) -> None:
        assert store.job_timeline("nope") is None

    def test_a_job_never_claimed_has_no_attempts(self, store: Store) -> None:
        store.add_job("render", job_id="J1")
        assert timeline(store, "J1").attempts == []


class TestRetention:
    def test_prune_deletes_attempts_and_actions_with_their_job(
        self, store: Store, clock: VirtualClock, raw_sql: RawSql
    ) -> None:
        store.add_job("render", job_id="old")
        job = store.claim_job("render", OWNER_A)
        assert job is not None
        run_job(store, clock, job, OWNER_A, code=0)
        clock.advance(100)
        store.add_job("render", job_id="kept", max_attempts=1)
        job = store.claim_job("render", OWNER_A)
        assert job is not None
        run_job(store, clock, job, OWNER_A, code=3, retry_delay=None)

        counts = store.prune(clock.now() + 1, dry_run=True)
        assert (counts["job_attempts"], counts["job_actions"]) == (1, 1)
        assert len(raw_sql(store, "SELECT * FROM job_attempts")) == 2
        counts = store.prune(clock.now() + 1)
        assert (counts["job_attempts"], counts["job_actions"]) == (1, 1)
        assert store.job_timeline("old") is None
        kept = only(timeline(store, "kept").attempts)  # failed jobs are kept, with history
        assert kept.outcome == "failed" and len(kept.actions) == 1
        rows = raw_sql(store, "SELECT job_id FROM job_attempts")
        assert [r["job_id"] for r in rows] == ["kept"]


def only_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(rows) == 1, rows
    return rows[0]
