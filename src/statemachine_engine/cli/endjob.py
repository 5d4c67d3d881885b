"""`complete-job`, `fail-job` and `remove-job`: an operator ends a job by hand (the released
1.0 commands). A job whose worker is alive and holds a valid lease is refused unless
--force, as in `reset-processing`: silently overriding a running worker would run it twice."""

from __future__ import annotations

import argparse
import os
import socket
from typing import Any

from statemachine_engine.cli.common import fail, format_time, opened_store
from statemachine_engine.cli.released import note
from statemachine_engine.database.liveness import holder_alive
from statemachine_engine.database.records import Job
from statemachine_engine.database.rows import machine_of
from statemachine_engine.database.store import Store

#: The machine name in the lease owner of a job the operator takes from the queue.
OPERATOR = "operator"


def operator_owner() -> str:
    """The lease owner of jobs this command takes: `operator@host:pid`."""
    return f"{OPERATOR}@{socket.gethostname()}:{os.getpid()}"


def why_resettable(store: Store, job: Job, now: float) -> str | None:
    """Why a processing job may be taken from its worker, or None while that worker may
    still run it (same liveness rule as a machine's start: pid and process start time)."""
    owner = job.lease_owner
    if owner is None:
        return "no lease owner"
    if job.lease_expires_at is not None and job.lease_expires_at <= now:
        return "lease expired"
    if holder_alive(owner, store.get_machine(machine_of(owner))) is False:
        return "worker process is gone"
    return None


def _holder(store: Store, job: Job, verb: str, force: bool) -> str:
    """The owner under which a processing job may be ended; a live holder needs --force."""
    owner = job.lease_owner or ""
    if why_resettable(store, job, store.clock.now()) is None and not force:
        until = format_time(job.lease_expires_at)
        fail(
            f"job {job.job_id!r} is being run by {owner}, which is alive (lease until"
            f" {until}); wait for it, stop that worker, or add --force to {verb} it anyway"
            " (the worker's own outcome is then discarded)"
        )
    return owner


def _taken(store: Store, job: Job, verb: str, force: bool) -> str:
    """The lease owner to end `job` under: its holder, or the operator after claiming a
    pending job by id (which counts as an attempt)."""
    if job.status == "processing":
        return _holder(store, job, verb, force)
    owner = operator_owner()
    if store.claim_job(None, owner, job_id=job.job_id) is None:
        fail(
            f"job {job.job_id!r} could not be taken: a worker claimed it a moment ago, or it is"
            f" scheduled for {format_time(job.run_after)} (cancel-job stops it for good)"
        )
    return owner


def _job_to_end(store: Store, job_id: str, done: str) -> Job | None:
    """The job to end, or None when it already is `done`; refuses other finished jobs."""
    job = store.get_job(job_id)
    if job is None:
        fail(f"no job {job_id!r}")
    if job.status == done:
        return None
    if job.status not in ("pending", "processing"):
        fail(f"job {job_id!r} is {job.status}; retry-job puts it back in the queue first")
    return job


def cmd_complete_job(args: argparse.Namespace) -> int:
    """Mark a job completed by hand: a pending one is taken from the queue first."""
    result: Any = {"completed_by": OPERATOR}
    with opened_store(args.db) as store:
        job = _job_to_end(store, args.job_id, "completed")
        if job is not None:
            owner = _taken(store, job, "complete", args.force)
            if not store.complete_job(job.job_id, owner, result):
                fail(f"job {job.job_id!r} changed while completing it; see show-job")
    if job is None:
        print(f"job {args.job_id!r} is already completed")
    else:
        print(f"job {job.job_id!r} completed by operator")
    return 0


def cmd_fail_job(args: argparse.Namespace) -> int:
    """Mark a job failed for good by hand, recording the reason in its errors."""
    reason = f"failed by operator: {args.reason}" if args.reason else "failed by operator"
    with opened_store(args.db) as store:
        job = _job_to_end(store, args.job_id, "failed")
        if job is not None:
            owner = _taken(store, job, "fail", args.force)
            if store.fail_job(job.job_id, owner, reason, retry_delay=None) is None:
                fail(f"job {job.job_id!r} changed while failing it; see show-job")
    if job is None:
        print(f"job {args.job_id!r} is already failed")
    else:
        print(f"job {job.job_id!r} failed ({reason}); retry-job runs it again")
    return 0


def cmd_remove_job(args: argparse.Namespace) -> int:
    """The 1.0 `remove-job`: cancels a pending job (finished jobs are deleted by prune)."""
    note(args, "remove-job", "cancel-job")
    with opened_store(args.db) as store:
        job = store.get_job(args.job_id)
        if job is None:
            fail(f"no job {args.job_id!r}")
        if job.status == "cancelled":
            print(f"job {job.job_id!r} is already cancelled")
            return 0
        if job.status == "processing":
            fail(
                f"job {job.job_id!r} is being run by {job.lease_owner}; fail-job stops it,"
                " remove-job only cancels pending jobs"
            )
        if job.status != "pending":
            fail(
                f"job {job.job_id!r} is {job.status}; jobs are no longer deleted one by one"
                " (prune --older-than DURATION deletes completed and cancelled jobs)"
            )
        store.cancel_job(job.job_id)
    print(f"job {job.job_id!r} cancelled (kept until prune deletes it)")
    return 0


def add_operator_commands(sub: Any, add_command: Any) -> None:
    """Register complete-job, fail-job and remove-job."""
    force_help = (
        "also end a job a live worker runs with a valid lease (its own outcome is discarded)"
    )
    help_text = "mark a job completed by hand (a pending job is taken from the queue)"
    p = add_command(sub, "complete-job", cmd_complete_job, help_text)
    p.add_argument("job_id", metavar="JOB_ID")
    p.add_argument("--force", action="store_true", help=force_help)

    help_text = "mark a job failed for good by hand, with the reason in its errors"
    p = add_command(sub, "fail-job", cmd_fail_job, help_text)
    p.add_argument("job_id", metavar="JOB_ID")
    p.add_argument("--reason", "--error", dest="reason", metavar="TEXT", help="why it failed")
    p.add_argument("--force", action="store_true", help=force_help)

    help_text = "1.0 spelling of cancel-job: cancel a pending job"
    p = add_command(sub, "remove-job", cmd_remove_job, help_text)
    p.add_argument("job_id", metavar="JOB_ID")
    p.add_argument("--reason", metavar="TEXT", help="accepted and not stored (1.0 option)")
