"""Job queue actions: claim the next job, claim a given one, complete or fail the current one."""

from __future__ import annotations

from typing import Any, ClassVar

from statemachine_engine.actions.base import BaseAction, Declaration, Emits, Param
from statemachine_engine.database.records import Job
from statemachine_engine.errors import ActionError

_JOB_KEYS = frozenset({"current_job", "job_id", "job_type", "data"})


class _ClaimAction(BaseAction):
    provides: ClassVar[frozenset[str] | None] = _JOB_KEYS
    instant: ClassVar[bool] = True

    success_default: ClassVar[str] = "new_job"

    def _took(self, job: Job | None, context: dict[str, Any], *, by_id: bool) -> str | None:
        if job is None:
            return self.event("empty", "no_jobs")
        self.runtime.hold_job(job, str(context.get("current_state", "")), context, by_id=by_id)
        self.logger.info(
            "[%s] claimed job %s (attempt %d)",
            context.get("machine_name"),
            job.job_id,
            job.attempts,
        )
        return self.event("success", self.success_default)


class CheckDatabaseQueueAction(_ClaimAction):
    """Claim the next runnable job of `job_type` → `success` (new_job) or `empty` (no_jobs).

    `job_type` defaults to the machine's `metadata.job_type`; without either, jobs of any
    type are claimed. `machine_type` (optional) restricts to jobs addressed to that type.
    """

    declaration: ClassVar[Declaration] = Declaration(
        params=(
            Param("job_type", "name", doc="job type to claim (default: `metadata.job_type`)"),
            Param("machine_type", "name", doc="only jobs addressed to this machine type"),
        ),
        emits=(
            Emits("success", "new_job", doc="a job was claimed"),
            Emits("empty", "no_jobs", doc="no runnable job (the machine parks)"),
        ),
        takes_input=True,
    )

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
        return self._took(job, context, by_id=False)


class ClaimJobAction(_ClaimAction):
    """Claim the job `job_id` → `success` (claimed, as in the released package), or
    `already_claimed` when it is not runnable. Claiming while another job is held is an
    error (its lease would leak).

    A job claimed by id is never completed by returning to this state: `complete_job` /
    `fail_job` end it, here or in the machine `start_fsm` hands it to."""

    declaration: ClassVar[Declaration] = Declaration(
        params=(Param("job_id", "text", required=True, doc="the job to claim"),),
        emits=(
            Emits("success", "claimed", doc="the job was claimed"),
            Emits("already_claimed", "already_claimed", doc="the job is not runnable"),
        ),
        takes_input=True,
    )
    success_default: ClassVar[str] = "claimed"

    async def execute(self, context: dict[str, Any]) -> str | None:
        runtime = self.runtime
        job_id = str(self.param("job_id", context))
        if runtime.job is not None:
            if runtime.job.job_id == job_id:
                return self.event("success", self.success_default)
            raise ActionError(
                f"claim_job: already holding job {runtime.job.job_id!r}; "
                "complete, fail or hand it over (start_fsm) before claiming another"
            )
        job = runtime.claim_job(None, lease_seconds=runtime.policy.lease_seconds, job_id=job_id)
        if job is None:
            return self.event("already_claimed", "already_claimed")
        return self._took(job, context, by_id=True)


def _held(action: str, job_id: Any, context: dict[str, Any], runtime: Any) -> None:
    """Check that `job_id` (when given) names the job this machine holds."""
    if job_id is None:
        return
    held = runtime.job
    if held is None or held.job_id != str(job_id):
        holding = f"it holds {held.job_id!r}" if held is not None else "it holds no job"
        raise ActionError(f"{action}: job {str(job_id)!r} is not held by this machine ({holding})")


class CompleteJobAction(BaseAction):
    """Complete the held job when the step commits; `result` (optional) is stored. `job_id`
    (optional) names the job: it must be the one this machine holds (claimed here or handed
    over by `start_fsm`), else the action fails."""

    provides: ClassVar[frozenset[str] | None] = frozenset()
    instant: ClassVar[bool] = True
    declaration: ClassVar[Declaration] = Declaration(
        params=(
            Param("result", doc="stored as the job's result"),
            Param("job_id", "text", doc="the job to complete (default: the held one)"),
        ),
        emits=(Emits("success", None),),
    )

    async def execute(self, context: dict[str, Any]) -> str | None:
        result = self.param("result", context, None)
        _held("complete_job", self.param("job_id", context, None), context, self.runtime)
        if not self.runtime.complete_job(result):
            self.logger.warning("[%s] complete_job: no current job", context.get("machine_name"))
        return self.event("success", None)


class FailJobAction(BaseAction):
    """Fail this attempt of the held job with `message`; retried with backoff unless
    `retry: false`, failed for good at max attempts. `job_id` as for `complete_job`."""

    provides: ClassVar[frozenset[str] | None] = frozenset()
    instant: ClassVar[bool] = True
    declaration: ClassVar[Declaration] = Declaration(
        params=(
            Param("message", "text", doc="the error (default: `last_error`)"),
            Param("retry", "bool", doc="false: failed for good at once"),
            Param("job_id", "text", doc="the job to fail (default: the held one)"),
        ),
        emits=(Emits("success", None),),
    )

    async def execute(self, context: dict[str, Any]) -> str | None:
        message = self.param("message", context, None) or context.get("last_error") or "failed"
        _held("fail_job", self.param("job_id", context, None), context, self.runtime)
        retry = self.config.get("retry", True)
        if isinstance(retry, str):
            retry = retry.strip().lower() not in ("false", "no", "off", "0")
        if not self.runtime.fail_job(str(message), retry=bool(retry)):
            self.logger.warning("[%s] fail_job: no current job", context.get("machine_name"))
        return self.event("success", None)
