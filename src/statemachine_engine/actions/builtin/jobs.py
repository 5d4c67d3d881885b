"""Actions that look at jobs without claiming them: list the pending ones, wait for some."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from statemachine_engine.actions.base import BaseAction, Declaration, Emits, Param
from statemachine_engine.database.records import Job
from statemachine_engine.errors import ActionError

FINISHED = frozenset({"completed", "failed", "cancelled"})
_PAGE = 500


def _number(action: str, name: str, value: Any, *, allow_zero: bool = False) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ActionError(f"{action}: '{name}' must be a number, not {value!r}") from None
    if number < 0 or (number == 0 and not allow_zero):
        raise ActionError(f"{action}: '{name}' must be positive, not {value!r}")
    return number


class GetPendingJobsAction(BaseAction):
    """List the runnable jobs of `job_type` (default: the machine's `metadata.job_type`, else
    every type) — pending ones whose run-after time has come, and those whose holder's lease
    expired — optionally only
    those a `machine_type` may claim (its own and untargeted ones), in claim order
    (priority, then age), at most `limit`, without claiming them. The job views land in
    context `store_as` (default `pending_jobs`); returns `success` (jobs_found) or `empty`
    (no_jobs)."""

    provides: ClassVar[frozenset[str] | None] = frozenset({"pending_jobs"})
    declaration: ClassVar[Declaration] = Declaration(
        params=(
            Param("job_type", "name", doc="job type (default: `metadata.job_type`, else any)"),
            Param("machine_type", "name", doc="only jobs this machine type may claim"),
            Param("limit", "int", doc="at most this many"),
            Param("store_as", "text", doc="context key for the list (default pending_jobs)"),
        ),
        emits=(
            Emits("success", "jobs_found", doc="at least one job"),
            Emits("empty", "no_jobs", doc="none (the machine parks)"),
        ),
    )

    async def execute(self, context: dict[str, Any]) -> str | None:
        runtime = self.runtime
        job_type = self.param("job_type", context, runtime.definition.metadata.get("job_type"))
        machine_type = self.param("machine_type", context, None)
        limit = self.param("limit", context, None)
        cap = None if limit is None else int(_number("get_pending_jobs", "limit", limit))
        now = runtime.store.clock.now()  # stored times are on the store's clock
        jobs: dict[str, Job] = {}
        for status in ("pending", "processing"):
            for job in self._all(status, None if job_type is None else str(job_type)):
                if status == "processing" and not _expired(job, now):
                    continue
                if job.run_after > now:
                    continue  # waiting out a retry backoff or a --run-after
                if machine_type is None or job.machine_type in (None, str(machine_type)):
                    jobs.setdefault(job.job_id, job)
        oldest_first = reversed(jobs.values())  # list_jobs gives newest first; ties keep rowid
        ordered = sorted(oldest_first, key=lambda j: (j.priority, j.run_after, j.created_at))
        found = [job.as_context() for job in ordered[:cap]]
        context[str(self.param("store_as", context, "pending_jobs"))] = found
        if not found:
            return self.event("empty", "no_jobs")
        return self.event("success", "jobs_found")

    def _all(self, status: str, job_type: str | None) -> list[Job]:
        found: list[Job] = []
        offset = 0
        while True:
            page = self.runtime.store.list_jobs(
                status=status, job_type=job_type, limit=_PAGE, offset=offset
            )
            found.extend(page)
            if len(page) < _PAGE:
                return found
            offset += _PAGE


def _expired(job: Job, now: float) -> bool:
    """A processing job whose holder stopped renewing its lease (it died or hangs)."""
    return (
        job.status == "processing"
        and job.lease_expires_at is not None
        and job.lease_expires_at < now
        and job.attempts < job.max_attempts
    )


class WaitForJobsAction(BaseAction):
    """Wait until every tracked job is done: finished (completed, failed or cancelled), or,
    for a job this machine handed to a machine it started, until that attempt ended (the
    job may be pending again for a retry). A job whose holder's lease expired has its
    attempt failed here.

    The ids come from `job_ids` (a list, or one id) or from the context key named by
    `job_ids_key` (also spelled `tracked_jobs_key`; default `job_ids`); list items may be
    ids or job views. It is woken when a handed job ends (the machine holding it rings this
    one) and otherwise re-reads the store every `poll_interval` seconds (default: the
    machine's safety interval). When all are done it stores `{id: {status, result, error}}`
    in context `store_as` (default `job_results`) and returns `success` (jobs_done), or
    `failed` if configured and any job did not complete. After `timeout` seconds (default:
    none) it returns `timeout_event` (or the released package's `pending`; default
    `timeout`), a failure. Waiting for a job this machine holds, or an unknown id, is an
    error.
    """

    provides: ClassVar[frozenset[str] | None] = frozenset({"job_results"})
    declaration: ClassVar[Declaration] = Declaration(
        params=(
            Param("job_ids", doc="a job id or a list of ids / job views"),
            Param("job_ids_key", "text", doc="context key holding the ids (default job_ids)"),
            Param("tracked_jobs_key", "text", doc="the same, as the released package spells it"),
            Param("poll_interval", "number", doc="re-check interval (default: safety interval)"),
            Param("timeout", "number", doc="seconds before giving up (default: none)"),
            Param("store_as", "text", doc="context key for the results (default job_results)"),
        ),
        emits=(
            Emits("success", "jobs_done", doc="every job is done"),
            Emits("failed", None, doc="every job is done and some did not complete"),
            Emits("timeout_event", None, failure=True, doc="the timeout"),
            Emits("pending", "timeout", failure=True, doc="the timeout (released spelling)"),
        ),
    )

    async def execute(self, context: dict[str, Any]) -> str | None:
        runtime = self.runtime
        ids = self._job_ids(context)
        held = runtime.job
        if held is not None and held.job_id in ids:
            raise ActionError(
                f"wait_for_jobs: job {held.job_id!r} is held by this machine itself and cannot"
                " finish while it waits; hand it over with start_fsm or complete it first"
            )
        recheck = runtime.safety_interval
        if "poll_interval" in self.config:
            recheck = _number(
                "wait_for_jobs", "poll_interval", self.param("poll_interval", context)
            )
        timeout = self.param("timeout", context, None)
        deadline = None
        if timeout is not None:
            deadline = runtime.clock.now() + _number(
                "wait_for_jobs", "timeout", timeout, allow_zero=True
            )
        store_as = str(self.param("store_as", context, "job_results"))
        while True:
            runtime.job_news.clear()
            known = self._read(ids)
            context[store_as] = {
                job_id: {"status": job.status, "result": job.result, "error": job.error_message}
                for job_id, job in known.items()
            }
            if all(self._done(job) for job in known.values()):
                for job_id in known:
                    runtime.handed.pop(job_id, None)
                if any(job.status != "completed" for job in known.values()):
                    failed = self.event("failed", None)
                    if failed is not None:
                        return failed
                return self.event("success", "jobs_done")
            now = runtime.clock.now()
            if deadline is not None and now >= deadline:
                event = self.event("timeout_event", self.event("pending", "timeout"))
                return self.failure("timed out waiting for jobs", "timeout_event", event or "")
            await runtime.wait_news(recheck if deadline is None else min(recheck, deadline - now))

    def _read(self, ids: list[str]) -> dict[str, Job]:
        """The tracked jobs; an expired holder's attempt is failed first."""
        runtime = self.runtime
        store = runtime.store
        jobs = {job_id: store.get_job(job_id) for job_id in ids}
        missing = sorted(job_id for job_id, job in jobs.items() if job is None)
        if missing:
            raise ActionError(f"wait_for_jobs: no job with id {', '.join(missing)}")
        known = {job_id: job for job_id, job in jobs.items() if job is not None}
        now = store.clock.now()  # leases are on the store's clock
        for job_id, job in known.items():
            expired = job.lease_expires_at is not None and job.lease_expires_at < now
            if job.status == "processing" and expired:
                runtime.fail_lost_holder(job, f"the lease of {job.lease_owner} expired")
                found = store.get_job(job_id)
                if found is not None:
                    known[job_id] = found
        return known

    def _done(self, job: Job) -> bool:
        if job.status in FINISHED:
            return True
        return job.job_id in self.runtime.handed and self.runtime.handed_attempt_ended(job)

    def _job_ids(self, context: dict[str, Any]) -> list[str]:
        if "job_ids" in self.config:
            value = self.param("job_ids", context)
        else:
            key = str(
                self.config.get("job_ids_key", self.config.get("tracked_jobs_key", "job_ids"))
            )
            if key not in context:
                raise ActionError(f"wait_for_jobs: the context has no key {key!r} with job ids")
            value = context[key]
        if value is None:
            return []
        items = value if isinstance(value, list | tuple) else [value]
        ids: list[str] = []
        for item in items:
            if isinstance(item, Mapping):
                item = item.get("id", item.get("job_id"))
            if item is None or isinstance(item, Mapping | list | tuple | bool):
                raise ActionError(f"wait_for_jobs: {item!r} is not a job id")
            if str(item) not in ids:
                ids.append(str(item))
        return ids
