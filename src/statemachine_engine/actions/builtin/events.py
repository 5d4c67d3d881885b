"""Event actions: take the next event addressed to this machine, clear them, send one."""

from __future__ import annotations

from typing import Any, ClassVar

from statemachine_engine.actions.base import BaseAction
from statemachine_engine.errors import ActionError


class CheckEventsAction(BaseAction):
    """Take the oldest pending event for this machine and return its type, or `empty`
    (no_events). The event is marked processed together with the step it causes."""

    provides: ClassVar[frozenset[str] | None] = frozenset({"event_data"})

    async def execute(self, context: dict[str, Any]) -> str | None:
        runtime = self.runtime
        event = runtime.store.next_event(runtime.machine_name)
        if event is None:
            return self.event("empty", "no_events")
        runtime.consume(event, context)
        return event.event_type


class ClearEventsAction(BaseAction):
    """Drop every pending event for this machine; returns `success` if configured."""

    provides: ClassVar[frozenset[str] | None] = frozenset()

    async def execute(self, context: dict[str, Any]) -> str | None:
        count = self.runtime.store.clear_events(self.runtime.machine_name)
        self.logger.info("[%s] cleared %d pending events", context.get("machine_name"), count)
        return self.event("success", None)


class SendEventAction(BaseAction):
    """Send `event_type` with `payload` to `target_machine`, durably, with this step.

    The payload keeps types: `payload: "{event_data.payload}"` forwards a dict.
    """

    provides: ClassVar[frozenset[str] | None] = frozenset()

    async def execute(self, context: dict[str, Any]) -> str | None:
        target = self.param("target_machine", context, self.config.get("target"))
        event_type = self.param("event_type", context, self.config.get("event"))
        if not target or not event_type:
            raise ActionError("send_event: 'target_machine' and 'event_type' are required")
        payload = self.param("payload", context, None)
        job = context.get("current_job")
        job_id = self.param("job_id", context, job.get("id") if isinstance(job, dict) else None)
        self.runtime.send(str(target), str(event_type), payload,
                          None if job_id is None else str(job_id))
        return self.event("success", None)
