"""`sleep`: wait on the machine's clock (virtual in tests)."""

from __future__ import annotations

from typing import Any, ClassVar

from statemachine_engine.actions.base import BaseAction, Declaration, Emits, Param
from statemachine_engine.actions.params import IF_HANDLED as _IF_HANDLED


class SleepAction(BaseAction):
    """Sleep `seconds` (or `duration`); returns `success` if configured, else `wake_up` when
    the state has a transition on it (as the released package did)."""

    provides: ClassVar[frozenset[str] | None] = frozenset()
    declaration: ClassVar[Declaration] = Declaration(
        params=(
            Param("seconds", "number", doc="how long (default 1)"),
            Param("duration", "number", doc="the same, as the released package spells it"),
        ),
        emits=(Emits("success", "wake_up", doc=_IF_HANDLED, if_handled=True),),
    )

    async def execute(self, context: dict[str, Any]) -> str | None:
        seconds = float(self.param("seconds", context, self.config.get("duration", 1)))
        await self.runtime.clock.sleep(seconds)
        return self.event_if_handled("success", "wake_up", context)
