"""JSON encoding of stored values, with the payload size limit enforced in one place."""

from __future__ import annotations

import json
from typing import Any

from statemachine_engine.database.store import MAX_PAYLOAD_BYTES
from statemachine_engine.errors import StoreError


class PayloadTooLargeError(StoreError):
    """A job's data or an event's payload exceeds MAX_PAYLOAD_BYTES."""


def encode(value: Any, *, what: str = "payload") -> str:
    """Compact JSON for a stored value; rejects values over the size limit."""
    if value is None:
        return "null"
    text, size = _dumps(value, what)
    if size > MAX_PAYLOAD_BYTES:
        raise PayloadTooLargeError(
            f"{what} is {size} bytes, more than the limit of {MAX_PAYLOAD_BYTES} bytes"
        )
    return text


def encode_batch(values: list[Any], *, what: str = "payloads") -> str:
    """Compact JSON of a list whose elements are stored one per row (each element's text is
    what `encode` would give it); no size limit on the batch as a whole."""
    return _dumps(values, what)[0]


def _dumps(value: Any, what: str) -> tuple[str, int]:
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError:
            # Lone surrogates cannot be stored as UTF-8 text; \uXXXX escapes round-trip.
            text = json.dumps(value, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
            size = len(text)
    except (TypeError, ValueError, RecursionError) as exc:
        raise StoreError(f"{what} is not JSON-serialisable: {exc}") from None
    return text, size


def decode(text: str | None) -> Any:
    """Inverse of encode; NULL columns decode to None."""
    if text is None:
        return None
    return json.loads(text)
