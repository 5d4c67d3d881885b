"""Placeholders in action parameters: `{root.path}` resolved against the engine context.

Plain text, type-preserving whole-string values, and shell commands where each value is
escaped for the quoting context it lands in, so job or event data can never inject code.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import time
from collections.abc import Iterator, Mapping
from typing import Any

from statemachine_engine.clock import iso
from statemachine_engine.config.placeholder_syntax import check_kind, parse_key, tokens
from statemachine_engine.core.shellcode import Slot, analyze
from statemachine_engine.errors import ActionError, PlaceholderError

MAX_ARG_BYTES = 131072
"""Linux refuses a single argv or environment string of this many bytes (MAX_ARG_STRLEN)."""

BUILTIN_ROOTS = frozenset(
    {"job_id", "id", "job_type", "data", "payload", "event", "current_job", "event_data"}
    | {"machine_name", "current_state", "step_key", "timestamp"}
)
"""Roots that resolve without an action having set them (besides any context key)."""

_JOB_FIELDS = {"job_id": "id", "id": "id", "job_type": "job_type", "data": "data"}
_DQ_SPECIAL = re.compile(r'([\\"$`])')


def _tokens(template: str) -> Iterator[tuple[str, bool]]:
    """(literal text, False) and (placeholder as written, True) pieces of a template."""
    for token in tokens(template):
        yield token.text, token.is_key


def placeholders(template: str) -> list[str]:
    """The placeholders in a template as written between the braces, in order."""
    return [piece for piece, is_key in _tokens(template) if is_key]


def _event_view(event: Mapping[str, Any]) -> dict[str, Any]:
    view: dict[str, Any] = {}
    if "name" in event or "event_type" in event:
        view["name"] = event.get("name", event.get("event_type"))
    for field in ("payload", "source", "delivery"):
        if field in event:
            view[field] = event[field]
    return view


def _root(root: str, key: str, context: Mapping[str, Any], now: float | None) -> Any:
    """Job and event fields first, then the context key of the same name."""
    if root == "timestamp":
        return iso(time.time() if now is None else now)
    job = context.get("current_job")
    if root in _JOB_FIELDS and isinstance(job, Mapping):
        field = _JOB_FIELDS[root]
        if field in job:
            return job[field]
        if field == "id" and "job_id" in job:
            return job["job_id"]
    event = context.get("event_data")
    if root in ("payload", "event") and isinstance(event, Mapping):
        if root == "event":
            return _event_view(event)
        if "payload" in event:
            return event["payload"]
    if root in context:
        return context[root]
    raise PlaceholderError(key)


def resolve(key: str, context: Mapping[str, Any], *, now: float | None = None) -> Any:
    """The value a dotted key names; a missing root, segment or a None midway is an error."""
    root, *path = key.split(".")
    value = _root(root, key, context, now)
    for segment in path:
        if isinstance(value, Mapping) and segment in value:
            value = value[segment]
        elif isinstance(value, list | tuple) and segment.isdigit() and int(segment) < len(value):
            value = value[int(segment)]
        else:
            raise PlaceholderError(key)
    return value


def resolve_placeholder(
    written: str, context: Mapping[str, Any], *, now: float | None = None
) -> Any:
    """The value of a placeholder as written: the first of `a|b` that is set and not None
    (the released package's fallback), checked against a declared `:int`/`:ident`."""
    key = parse_key(written)
    value: Any = None
    found = False
    first_missing: PlaceholderError | None = None
    for path in key.paths:
        try:
            value = resolve(path, context, now=now)
        except PlaceholderError as exc:
            first_missing = first_missing or exc
            continue
        found = True
        if value is not None:
            break
    if not found and first_missing is not None:
        raise first_missing
    if key.kind is not None:
        check_kind(key, to_text(value))
    return value


def to_text(value: Any) -> str:
    """Text form of a value: JSON spelling for bools, dicts and lists; None is empty text.

    None becomes "" only because the key exists with a null value; a missing key raises.
    """
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, bytes):
        return os.fsdecode(value)
    if isinstance(value, Mapping | list | tuple):
        plain = dict(value) if isinstance(value, Mapping) else value
        return json.dumps(plain, separators=(",", ":"), ensure_ascii=False, default=str)
    return str(value)


def render_text(template: str, context: Mapping[str, Any], *, now: float | None = None) -> str:
    """Substitute every placeholder with the text form of its value."""
    return "".join(
        to_text(resolve_placeholder(piece, context, now=now)) if is_key else piece
        for piece, is_key in _tokens(template)
    )


def render_visible(
    template: str, context: Mapping[str, Any], *, now: float | None = None
) -> tuple[str, list[str]]:
    """Like `render_text`, but a placeholder without a value is written as is (`{x}`) and
    listed in the second item: for log lines, which must show a gap, never fail on one."""
    out: list[str] = []
    missing: list[str] = []
    for piece, is_key in _tokens(template):
        if not is_key:
            out.append(piece)
            continue
        try:
            out.append(to_text(resolve_placeholder(piece, context, now=now)))
        except ActionError:
            out.append("{" + piece + "}")
            missing.append(piece)
    return "".join(out), missing


def render_value(value: Any, context: Mapping[str, Any], *, now: float | None = None) -> Any:
    """Render strings inside dicts and lists; a string that is one placeholder keeps its type.

    `"{event_data.payload}"` forwards the payload dict itself, `"{count}"` stays an int.
    """
    if isinstance(value, str):
        pieces = list(_tokens(value))
        if len(pieces) == 1 and pieces[0][1]:
            return resolve_placeholder(pieces[0][0], context, now=now)
        return render_text(value, context, now=now)
    if isinstance(value, Mapping):
        return {k: render_value(v, context, now=now) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(render_value(v, context, now=now) for v in value)
    return value


def _escape(quoting: str, text: str) -> str:
    """Text that, placed in this quoting context, makes bash see exactly `text`."""
    if quoting == "sq":
        return text.replace("'", "'\\''")
    if quoting == "dq":
        return _DQ_SPECIAL.sub(r"\\\1", text)
    if quoting == "ansi":
        return text.replace("\\", "\\\\").replace("'", "\\'")
    if quoting == "comment":
        return shlex.quote(text.replace("\n", " "))
    if quoting == "arith":
        return text
    return shlex.quote(text)


def _check_slot(slot: Slot) -> None:
    """Refuse a placeholder no value can safely fill, or one bash would evaluate as code
    unless it is declared `:int`/`:ident` (its value is then checked before use)."""
    if slot.refused:
        raise ActionError(
            f"placeholder {{{slot.key}}} sits {slot.refused} in a shell command, where its "
            "value cannot be escaped safely; move it into a plain, '...' or \"...\" word"
        )
    if slot.evaluates and parse_key(slot.key).kind is None:
        raise ActionError(_unsafe_message(slot))


def _unsafe_message(slot: Slot) -> str:
    """Why a placeholder in an evaluating context is refused, and the fix."""
    return (
        f"placeholder {{{slot.key}}} sits in {slot.evaluates}, where bash runs text as code "
        f"even when quoted; declare it {{{slot.key}:int}} or {{{slot.key}:ident}} so its "
        "value is checked before the command runs"
    )


def _arg_bytes(text: str, what: str) -> int:
    """Bytes the text takes as a process argument; lone surrogates map as in os.fsencode."""
    if "\x00" in text:
        raise ActionError(f"{what} contains a NUL byte, which no command can receive")
    try:
        return len(os.fsencode(text))
    except UnicodeEncodeError as exc:
        raise ActionError(f"{what} holds text that cannot be encoded: {exc}") from exc


def render_shell(template: str, context: Mapping[str, Any], *, now: float | None = None) -> str:
    """Render a bash command, escaping each value for the quoting context it lands in.

    Refuses (ActionError) values with NUL, values of MAX_ARG_BYTES or more, placeholders
    inside backticks, ${...}, here-documents or right after a backslash, and undeclared
    placeholders where bash evaluates text as code (arithmetic, subscripts, variable names).
    """
    slots = iter(analyze(template))
    out: list[str] = []
    keys: list[str] = []
    for piece, is_key in _tokens(template):
        if not is_key:
            out.append(piece)
            continue
        slot = next(slots)
        _check_slot(slot)
        text = to_text(resolve_placeholder(piece, context, now=now))
        size = _arg_bytes(text, f"placeholder {{{piece}}}")
        if size >= MAX_ARG_BYTES:
            raise ActionError(
                f"placeholder {{{piece}}} is {size} bytes; values of "
                f"{MAX_ARG_BYTES} bytes or more cannot be passed on a command line, "
                "pass them to the command through a file or stdin"
            )
        out.append(_escape(slot.quoting, text))
        keys.append(piece)
    command = "".join(out)
    size = _arg_bytes(command, "the command")
    if size >= MAX_ARG_BYTES:
        names = ", ".join(f"{{{k}}}" for k in keys) or "no placeholders"
        raise ActionError(
            f"command is {size} bytes after substituting {names}; commands of {MAX_ARG_BYTES} "
            "bytes or more cannot be run, pass large values through a file or stdin"
        )
    return command
