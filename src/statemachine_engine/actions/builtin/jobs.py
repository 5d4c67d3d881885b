"""Actions that look at jobs without claiming them: list the pending ones, wait for some."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from statemachine_engine.actions.base import BaseAction
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
    """List pending jobs of `job_type` (default: the machine's `metadata.job_type`, else
    every type), optionally only those a `machine_type` may claim (its own and untargeted
    ones), in claim order (priority, then age), at most `limit`, without claiming them.
    The job views land in context `store_as` (default `pending_jobs`); returns `success`
    (jobs_found) or `empty` (no_jobs)."""

    provides: ClassVar[frozenset[str] | None] = frozenset({"pending_jobs"})

    async def execute(self, context: dict[str, Any]) -> str | None:
        runtime = self.runtime
        job_type = self.param("job_type", context, runtime.definition.metadata.get("job_type"))
        machine_type = self.param("machine_type", context, None)
        limit = self.param("limit", context, None)
        cap = None if limit is None else int(_number("get_pending_jobs", "limit", limit))
        jobs: dict[str, Job] = {}
        offset = 0
        while True:
            page = runtime.store.list_jobs(
                status="pending",
                job_type=None if job_type is None else str(job_type),
                limit=_PAGE,
                offset=offset,
            )
            for job in page:
                if machine_type is None or job.machine_type in (None, str(machine_type)):
                    jobs.setdefault(job.job_id, job)
            if len(page) < _PAGE:
                break
            offset += _PAGE
        oldest_first = reversed(jobs.values())  # list_jobs gives newest first; ties keep rowid
        ordered = sorted(oldest_first, key=lambda j: (j.priority, j.run_after, j.created_at))
        found = [job.as_context() for job in ordered[:cap]]
        context[str(self.param("store_as", context, "pending_jobs"))] = found
        if not found:
            return self.event("empty", "no_jobs")
        return self.event("success", "jobs_found")


class WaitForJobsAction(BaseAction):
    """Wait until every tracked job is finished (completed, failed or cancelled).

    The ids come from `job_ids` (a list, or one id) or from the context key named by
    `job_ids_key` (also spelled `tracked_jobs_key`; default `job_ids`); list items may be
    ids or job views. This action polls: it reads the store every `poll_interval` seconds
    (default 0.5) on the machine's clock. When all are done it stores
    `{id: {status, result, error}}` in context `store_as` (default `job_results`) and
    returns `success` (jobs_done), or `failed` if configured and any job failed. After
    `timeout` seconds (default: none) it returns `timeout_event` (or the released
    package's `pending`; default `timeout`). An unknown job id is an error.
    """

    provides: ClassVar[frozenset[str] | None] = frozenset({"job_results"})

    async def execute(self, context: dict[str, Any]) -> str | None:
        runtime = self.runtime
        ids = self._job_ids(context)
        poll = _number("wait_for_jobs", "poll_interval", self.param("poll_interval", context, 0.5))
        timeout = self.param("timeout", context, None)
        deadline = None
        if timeout is not None:
            deadline = runtime.clock.now() + _number(
                "wait_for_jobs", "timeout", timeout, allow_zero=True
            )
        store_as = str(self.param("store_as", context, "job_results"))
        while True:
            jobs = {job_id: runtime.store.get_job(job_id) for job_id in ids}
            missing = sorted(job_id for job_id, job in jobs.items() if job is None)
            if missing:
                raise ActionError(f"wait_for_jobs: no job with id {', '.join(missing)}")
            known = {job_id: job for job_id, job in jobs.items() if job is not None}
            context[store_as] = {
                job_id: {"status": job.status, "result": job.result, "error": job.error_message}
                for job_id, job in known.items()
            }
            if all(job.status in FINISHED for job in known.values()):
                if any(job.status != "completed" for job in known.values()):
                    failed = self.event("failed", None)
                    if failed is not None:
                        return failed
                return self.event("success", "jobs_done")
            now = runtime.clock.now()
            if deadline is not None and now >= deadline:
                return self.event("timeout_event", self.event("pending", "timeout"))
            await runtime.clock.sleep(poll if deadline is None else min(poll, deadline - now))

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
