"""`add_to_list` and `pop_from_list`: a list kept in the machine's context."""

from __future__ import annotations

from typing import Any, ClassVar

from statemachine_engine.actions.base import BaseAction, Declaration, Emits, Param
from statemachine_engine.actions.params import IF_HANDLED
from statemachine_engine.errors import ActionError


def _list_at(action: str, key: str, context: dict[str, Any]) -> list[Any]:
    value = context.get(key)
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise ActionError(f"{action}: context key {key!r} holds {type(value).__name__}, not a list")
    return list(value)


class AddToListAction(BaseAction):
    """Append `value` (its type kept) to the list in context `list_key`, creating it;
    with `unique: true` a value already there is not added again. Returns `success` if
    configured, else `success` when the state has a transition on it (the released
    default)."""

    provides: ClassVar[frozenset[str] | None] = frozenset()
    instant: ClassVar[bool] = True
    declaration: ClassVar[Declaration] = Declaration(
        params=(
            Param("list_key", "text", required=True, doc="the context key holding the list"),
            Param("value", doc="the value to append (type kept)"),
            Param("unique", "bool", doc="do not add a value already there"),
        ),
        emits=(Emits("success", "success", doc=IF_HANDLED, if_handled=True),),
    )

    async def execute(self, context: dict[str, Any]) -> str | None:
        key = str(self.param("list_key", context))
        value = self.param("value", context)
        items = _list_at("add_to_list", key, context)
        if not (self.config.get("unique") is True and value in items):
            items.append(value)
        context[key] = items
        return self.event_if_handled("success", "success", context)


class PopFromListAction(BaseAction):
    """Take the first item (`position: last` for the last) off the list in context
    `list_key` into context `store_as` (default `popped_item`). Returns `success` if
    configured, else `item_popped` when the state has a transition on it (the released
    default); `empty` (default list_empty) when there is nothing to take."""

    provides: ClassVar[frozenset[str] | None] = frozenset({"popped_item"})
    instant: ClassVar[bool] = True
    declaration: ClassVar[Declaration] = Declaration(
        params=(
            Param("list_key", "text", required=True, doc="the context key holding the list"),
            Param("position", "name", doc="first (default) or last"),
            Param("store_as", "text", doc="context key for the item (default popped_item)"),
        ),
        emits=(
            Emits("success", "item_popped", doc=IF_HANDLED, if_handled=True),
            Emits("empty", "list_empty", doc="the list is empty"),
        ),
    )

    async def execute(self, context: dict[str, Any]) -> str | None:
        key = str(self.param("list_key", context))
        position = str(self.param("position", context, "first"))
        if position not in ("first", "last"):
            raise ActionError(f"pop_from_list: 'position' must be first or last, not {position!r}")
        items = _list_at("pop_from_list", key, context)
        if not items:
            return self.event("empty", "list_empty")
        item = items.pop(0 if position == "first" else -1)
        context[key] = items
        context[str(self.param("store_as", context, "popped_item"))] = item
        return self.event_if_handled("success", "item_popped", context)
