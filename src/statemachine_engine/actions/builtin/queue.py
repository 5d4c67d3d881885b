"""Job queue actions: claim the next job, claim a given one, complete or fail the current one."""

from __future__ import annotations

from typing import Any, ClassVar

from statemachine_engine.actions.base import BaseAction
from statemachine_engine.database.records import Job
from statemachine_engine.errors import ActionError

_JOB_KEYS = frozenset({"current_job", "job_id", "job_type", "data"})


class _ClaimAction(BaseAction):
    provides: ClassVar[frozenset[str] | None] = _JOB_KEYS
    instant: ClassVar[bool] = True

    def _took(self, job: Job | None, context: dict[str, Any]) -> str | None:
        if job is None:
            return self.event("empty", "no_jobs")
        self.runtime.hold_job(job, str(context.get("current_state", "")), context)
        self.logger.info(
            "[%s] claimed job %s (attempt %d)",
            context.get("machine_name"),
            job.job_id,
            job.attempts,
        )
        return self.event("success", "new_job")


class CheckDatabaseQueueAction(_ClaimAction):
    """Claim the next runnable job of `job_type` → `success` (new_job) or `empty` (no_jobs).

    `job_type` defaults to the machine's `metadata.job_type`; without either, jobs of any
    type are claimed. `machine_type` (optional) restricts to jobs addressed to that type.
    """

    async def execute(self, context: dict[str, Any]) -> str | None:
        runtime = self.runtime
        if runtime.job is not None:
            return self.event("success", "new_job")
        job_type = self.param("job_type", context, runtime.definition.metadata.get("job_type"))
        machine_type = self.param("machine_type", context, None)
        job = runtime.claim_job(
            None if job_type is None else str(job_type),
            machine_type=None if machine_type is None else str(machine_type),
        )
        return self._took(job, context)


class ClaimJobAction(_ClaimAction):
    """Claim the job `job_id` → `success` (new_job), or `already_claimed` when it is not
    runnable. Claiming while another job is held is an error (its lease would leak)."""

    async def execute(self, context: dict[str, Any]) -> str | None:
        runtime = self.runtime
        job_id = str(self.param("job_id", context))
        if runtime.job is not None:
            if runtime.job.job_id == job_id:
                return self.event("success", "new_job")
            raise ActionError(
                f"claim_job: already holding job {runtime.job.job_id!r}; "
                "complete or fail it before claiming another"
            )
        job = runtime.claim_job(None, lease_seconds=runtime.lease_seconds, job_id=job_id)
        if job is None:
            return self.event("already_claimed", "already_claimed")
        return self._took(job, context)


class CompleteJobAction(BaseAction):
    """Complete the current job when the step commits; `result` (optional) is stored."""

    provides: ClassVar[frozenset[str] | None] = frozenset()
    instant: ClassVar[bool] = True

    async def execute(self, context: dict[str, Any]) -> str | None:
        result = self.param("result", context, None)
        if not self.runtime.complete_job(result):
            self.logger.warning("[%s] complete_job: no current job", context.get("machine_name"))
        return self.event("success", None)


class FailJobAction(BaseAction):
    """Fail this attempt of the current job with `message`; retried with backoff unless
    `retry: false`, failed for good at max attempts."""

    provides: ClassVar[frozenset[str] | None] = frozenset()
    instant: ClassVar[bool] = True

    async def execute(self, context: dict[str, Any]) -> str | None:
        message = self.param("message", context, None) or context.get("last_error") or "failed"
        retry = self.config.get("retry", True)
        if isinstance(retry, str):
            retry = retry.strip().lower() not in ("false", "no", "off", "0")
        if not self.runtime.fail_job(str(message), retry=bool(retry)):
            self.logger.warning("[%s] fail_job: no current job", context.get("machine_name"))
        return self.event("success", None)
