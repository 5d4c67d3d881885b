"""`set_context`: store values in the machine's context for later actions and placeholders."""

from __future__ import annotations

from typing import Any, ClassVar

from statemachine_engine.actions.base import BaseAction
from statemachine_engine.errors import ActionError


class SetContextAction(BaseAction):
    """Set `key` to `value`, or every entry of `values`; returns `success` if configured."""

    provides: ClassVar[frozenset[str] | None] = frozenset()

    async def execute(self, context: dict[str, Any]) -> str | None:
        if "values" in self.config:
            values = self.param("values", context)
            if not isinstance(values, dict):
                raise ActionError("set_context: 'values' must be a mapping")
            context.update({str(k): v for k, v in values.items()})
        else:
            key = self.param("key", context)
            context[str(key)] = self.param("value", context, None)
        return self.event("success", None)
