"""Values a step will store, checked when an action stages them: a value the commit would
refuse (over the payload limit, not JSON) is that action's failure with the real reason,
never a machine that dies at commit. Free texts (errors, activity lines) are clipped."""

from __future__ import annotations

from typing import Any

from statemachine_engine.database.codec import encode
from statemachine_engine.errors import ActionError, StoreError

#: Longest error reason or activity line kept in a step (a job keeps one per attempt).
MAX_TEXT = 16 * 1024


def check_storable(value: Any, what: str) -> None:
    """Raise ActionError naming `what` when `value` cannot be stored."""
    if value is None:
        return  # the common case (a job completed without a result) needs no encoding
    try:
        encode(value, what=what)
    except StoreError as exc:
        raise ActionError(str(exc)) from None


def clipped(text: str, limit: int = MAX_TEXT) -> str:
    """`text` cut to `limit` characters, with a marker saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text) - limit} more characters]"
