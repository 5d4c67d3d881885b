"""`set_context`: store values in the machine's context for later actions and placeholders."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from statemachine_engine.actions.base import BaseAction, Declaration, Emits, Param
from statemachine_engine.actions.params import IF_HANDLED
from statemachine_engine.errors import ActionError


class SetContextAction(BaseAction):
    """Set `key` to `value`, or every entry of `values` (also spelled `context`); values keep
    their types (`value: "{data.count}"` stays an int). Returns `success` if configured, else
    `success` when the state has a transition on it (the released default)."""

    provides: ClassVar[frozenset[str] | None] = frozenset()
    instant: ClassVar[bool] = True
    declaration: ClassVar[Declaration] = Declaration(
        params=(
            Param("key", "text", doc="the context key to set"),
            Param("value", doc="its value (type kept)"),
            Param("values", "map", doc="several keys at once"),
            Param("context", "map", doc="the same, as the released package spells it"),
        ),
        emits=(Emits("success", "success", doc=IF_HANDLED, if_handled=True),),
        one_of=(("key", "values", "context"),),
    )

    async def execute(self, context: dict[str, Any]) -> str | None:
        mapping_key = next((k for k in ("values", "context") if k in self.config), None)
        if mapping_key is not None:
            values = self.param(mapping_key, context)
            if not isinstance(values, Mapping):
                raise ActionError(f"set_context: '{mapping_key}' must be a mapping")
            context.update({str(k): v for k, v in values.items()})
        elif "key" in self.config:
            key = self.param("key", context)
            context[str(key)] = self.param("value", context, None)
        else:
            raise ActionError("set_context: give `key` and `value`, or a `values` mapping")
        return self.event_if_handled("success", "success", context)
