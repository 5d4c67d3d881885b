"""Event actions: take the next event addressed to this machine, clear them, send one."""

from __future__ import annotations

from typing import Any, ClassVar

from statemachine_engine.actions.base import BaseAction, Declaration, Emits, Param
from statemachine_engine.actions.params import IF_HANDLED
from statemachine_engine.errors import ActionError, StateMachineError
from statemachine_engine.transport.runtime_dir import validate_machine_name

_CLEAR_LIMIT = 100_000
"""Pending events looked at by one `clear_events` with `event_types`."""


class CheckEventsAction(BaseAction):
    """Take the oldest pending event for this machine and return its type, or `empty`
    (no_events). The event is marked processed together with the step it causes."""

    provides: ClassVar[frozenset[str] | None] = frozenset({"event_data"})
    declaration: ClassVar[Declaration] = Declaration(
        params=(
            Param(
                "event_types", "names", doc="released package: accepted, events are read in order"
            ),
            Param(
                "target_machine", "text", doc="released package: accepted, a machine reads its own"
            ),
        ),
        emits=(Emits("empty", "no_events", doc="no pending event (the machine parks)"),),
        other_events=True,
        takes_input=True,
    )

    async def execute(self, context: dict[str, Any]) -> str | None:
        runtime = self.runtime
        event = runtime.store.next_event(runtime.machine_name)
        if event is None:
            return self.event("empty", "no_events")
        runtime.consume(event, context)
        return event.event_type


class ClearEventsAction(BaseAction):
    """Drop the pending events of `event_types` (default: every type) for `target_machine`
    (default: this machine). Returns `success` if configured, else `events_cleared` or, when
    there was none, `empty` (default no_events_to_clear), each only when the state has a
    transition on it (the released defaults)."""

    provides: ClassVar[frozenset[str] | None] = frozenset()
    declaration: ClassVar[Declaration] = Declaration(
        params=(
            Param("event_types", "names", doc="only events of these types (default: all)"),
            Param("target_machine", "text", doc="whose events (default: this machine)"),
        ),
        emits=(
            Emits("success", "events_cleared", doc=IF_HANDLED, if_handled=True),
            Emits("empty", "no_events_to_clear", doc=IF_HANDLED, if_handled=True),
        ),
    )

    #: The difference from 1.0 is said once per action, the first time it clears anything.
    _warned_all = False

    async def execute(self, context: dict[str, Any]) -> str | None:
        store = self.runtime.store
        target = str(self.param("target_machine", context, self.runtime.machine_name))
        types = self.param("event_types", context, None)
        if types is None:
            count = store.clear_events(target)
            if count and not self._warned_all:
                self._warned_all = True
                self.logger.warning(
                    "[%s] clear_events without event_types cleared %d pending events of every"
                    " type for %s (statemachine-engine 1.0 cleared none; SM125)",
                    context.get("machine_name"),
                    count,
                    target,
                )
        else:
            wanted = {types} if isinstance(types, str) else {str(t) for t in types}
            pending = store.list_events(target=target, status="pending", limit=_CLEAR_LIMIT)
            count = sum(
                store.mark_event(event.id, "processed")
                for event in pending
                if event.event_type in wanted
            )
        self.logger.info(
            "[%s] cleared %d pending events of %s", context.get("machine_name"), count, target
        )
        if count == 0 and "success" not in self.config:
            return self.event_if_handled("empty", "no_events_to_clear", context)
        return self.event_if_handled("success", "events_cleared", context)


class SendEventAction(BaseAction):
    """Send `event_type` (or `event`) with `payload` to `target_machine` (or `target`),
    durably, with this step. The payload keeps types: `payload: "{event_data.payload}"`
    forwards a dict. `job_id` defaults to the current job's."""

    provides: ClassVar[frozenset[str] | None] = frozenset()
    instant: ClassVar[bool] = True
    declaration: ClassVar[Declaration] = Declaration(
        params=(
            Param("target_machine", "text", doc="the machine to send to"),
            Param("target", "text", doc="the same, as the released package spells it"),
            Param("event_type", "text", doc="the event"),
            Param("event", "text", doc="the same, as the released package spells it"),
            Param("payload", doc="any value (type kept)"),
            Param("job_id", "text", doc="job the event is about (default: the held one)"),
        ),
        emits=(Emits("success", None),),
        one_of=(("target_machine", "target"), ("event_type", "event")),
    )

    async def execute(self, context: dict[str, Any]) -> str | None:
        target = self._either("target_machine", "target", context)
        event_type = self._either("event_type", "event", context)
        if not target or not event_type:
            raise ActionError("send_event: 'target_machine' and 'event_type' are required")
        try:
            validate_machine_name(str(target))
        except StateMachineError as exc:
            raise ActionError(f"send_event: {exc}") from None
        payload = self.param("payload", context, None)
        job = context.get("current_job")
        job_id = self.param("job_id", context, job.get("id") if isinstance(job, dict) else None)
        self.runtime.send(
            str(target), str(event_type), payload, None if job_id is None else str(job_id)
        )
        return self.event("success", None)

    def _either(self, key: str, alias: str, context: dict[str, Any]) -> Any:
        """A parameter given under its name or its released-package alias, rendered."""
        return self.param(key if key in self.config else alias, context, None)
