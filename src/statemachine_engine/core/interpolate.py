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
from dataclasses import dataclass
from typing import Any

from statemachine_engine.clock import iso
from statemachine_engine.errors import ActionError, PlaceholderError

MAX_ARG_BYTES = 131072
"""Linux refuses a single argv or environment string of this many bytes (MAX_ARG_STRLEN)."""

BUILTIN_ROOTS = frozenset(
    {"job_id", "id", "job_type", "data", "payload", "event", "current_job", "event_data"}
    | {"machine_name", "current_state", "step_key", "timestamp"}
)
"""Roots that resolve without an action having set them (besides any context key)."""

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)\}")
_JOB_FIELDS = {"job_id": "id", "id": "id", "job_type": "job_type", "data": "data"}
_WORD_START = frozenset(" \t\n;&|()<>")
_DQ_SPECIAL = re.compile(r'([\\"$`])')
_REFUSED = {"bt": "backticks", "param": "a ${...} expansion", "arith": "an arithmetic expression"}


def _tokens(template: str) -> Iterator[tuple[str, bool]]:
    """Split a template into (literal text, False) and (placeholder key, True) pieces.

    `{{` and `}}` are literal braces; a `{` right after `$` is shell syntax, not a placeholder.
    """
    buf: list[str] = []
    i, n = 0, len(template)
    after_dollar = False
    while i < n:
        char = template[i]
        match = None
        if char == "{" and not after_dollar and not template.startswith("{{", i):
            match = _PLACEHOLDER.match(template, i)
        if match is not None:
            if buf:
                yield "".join(buf), False
                buf.clear()
            yield match.group(1), True
            i = match.end()
        elif template.startswith(("{{", "}}"), i):
            buf.append(char)
            i += 2
        else:
            buf.append(char)
            i += 1
        after_dollar = match is None and char == "$"
    if buf:
        yield "".join(buf), False


def placeholders(template: str) -> list[str]:
    """The dotted placeholder keys in a template, in order of appearance."""
    return [piece for piece, is_key in _tokens(template) if is_key]


def _event_view(event: Mapping[str, Any]) -> dict[str, Any]:
    view: dict[str, Any] = {}
    if "name" in event or "event_type" in event:
        view["name"] = event.get("name", event.get("event_type"))
    for field in ("payload", "source"):
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
        to_text(resolve(piece, context, now=now)) if is_key else piece
        for piece, is_key in _tokens(template)
    )


def render_value(value: Any, context: Mapping[str, Any], *, now: float | None = None) -> Any:
    """Render strings inside dicts and lists; a string that is one placeholder keeps its type.

    `"{event_data.payload}"` forwards the payload dict itself, `"{count}"` stays an int.
    """
    if isinstance(value, str):
        pieces = list(_tokens(value))
        if len(pieces) == 1 and pieces[0][1]:
            return resolve(pieces[0][0], context, now=now)
        return render_text(value, context, now=now)
    if isinstance(value, Mapping):
        return {k: render_value(v, context, now=now) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(render_value(v, context, now=now) for v in value)
    return value


@dataclass
class _Frame:
    kind: str
    depth: int = 0
    dollar: bool = False


class _ShellScanner:
    """Follows bash quoting through literal template text to know where a value lands."""

    def __init__(self) -> None:
        self.stack = [_Frame("bare")]
        self.escaped = False
        self.prev = ""
        self.word_char = False
        self.blocked = ""

    def feed(self, text: str) -> None:
        i = 0
        while i < len(text):
            was_escaped = self.escaped
            i = self._step(text, i)
            self.prev = "x" if was_escaped or self.word_char else text[i - 1]
            self.word_char = False

    def _step(self, text: str, i: int) -> int:
        char, frame = text[i], self.stack[-1]
        kind = frame.kind
        if self.escaped:
            self.escaped = False
        elif kind in ("sq", "comment"):
            if char == ("'" if kind == "sq" else "\n"):
                self.stack.pop()
        elif char == "\\":
            self.escaped = True
        elif kind in ("ansi", "bt"):
            if char == ("'" if kind == "ansi" else "`"):
                self.stack.pop()
        elif char == "`":
            self.stack.append(_Frame("bt"))
        elif char == "$":
            return self._dollar(text, i, in_dq=kind == "dq")
        elif kind == "dq":
            if char == '"':
                self.stack.pop()
        elif char in "'\"":
            self.stack.append(_Frame("sq" if char == "'" else "dq"))
        elif kind in ("bare", "cmd") and text.startswith("((", i):
            self.stack.append(_Frame("arith"))
            return i + 2
        elif kind in ("param", "arith") or (kind == "cmd" and char in "()"):
            return self._nest(text, i, frame)
        else:
            return self._bare(text, i)
        return i + 1

    def _dollar(self, text: str, i: int, *, in_dq: bool) -> int:
        if text.startswith("$$", i):
            return i + 2
        for opener, kind in (("$((", "arith"), ("$(", "cmd"), ("${", "param"), ("$'", "ansi")):
            if text.startswith(opener, i) and not (in_dq and kind == "ansi"):
                self.stack.append(_Frame(kind, dollar=True))
                return i + len(opener)
        return i + 1

    def _nest(self, text: str, i: int, frame: _Frame) -> int:
        """Count brackets; the one closing $(...), ${...}, <(...) or $((...)) ends a word char.

        `((`/`$((` closed by a lone `)` was a subshell, `( (`/`$( (`, as bash reads it too.
        """
        opener, closer = "{}" if frame.kind == "param" else "()"
        if text[i] == opener:
            frame.depth += 1
        elif text[i] == closer:
            frame.depth -= 1
            if frame.depth >= 0:
                return i + 1
            if frame.kind == "arith" and not text.startswith("))", i):
                if frame.dollar:
                    frame.kind, frame.depth = "cmd", 0
                    return i + 1
                self.stack.pop()
                self.stack[-1].depth += 1
                return i + 1
            self.stack.pop()
            self.word_char = frame.dollar
            if frame.kind == "arith":
                return i + 2
        return i + 1

    def _bare(self, text: str, i: int) -> int:
        at_word_start = self.prev == "" or self.prev in _WORD_START
        if text[i] == "#" and at_word_start:
            self.stack.append(_Frame("comment"))
        elif text.startswith(("<(", ">("), i):
            self.stack.append(_Frame("cmd", dollar=True))
            return i + 2
        elif text.startswith("<<<", i):
            return i + 3
        elif text.startswith("<<", i):
            self.blocked = "after a here-document operator (<<)"
        elif at_word_start and re.match(r"case\b", text[i:]) and len(self.stack) > 1:
            self.blocked = "after a `case` inside $(...)"
        return i + 1

    def escape(self, key: str, text: str) -> str:
        """Text that, placed at the current position, makes bash see exactly `text`."""
        kind = self.stack[-1].kind
        where = self.blocked or _REFUSED.get(kind, "")
        if self.escaped:
            where = "right after a backslash"
        if where:
            raise ActionError(
                f"placeholder {{{key}}} sits {where} in a shell command, where its value "
                "cannot be escaped safely; move it into a plain, '...' or \"...\" word"
            )
        self.prev = "x"
        if kind == "sq":
            return text.replace("'", "'\\''")
        if kind == "dq":
            return _DQ_SPECIAL.sub(r"\\\1", text)
        if kind == "ansi":
            return text.replace("\\", "\\\\").replace("'", "\\'")
        if kind == "comment":
            return shlex.quote(text.replace("\n", " "))
        return shlex.quote(text)


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

    Refuses (ActionError) values with NUL, values of MAX_ARG_BYTES or more, and placeholders
    inside backticks, ${...}, arithmetic, here-documents or right after a backslash.
    """
    scanner = _ShellScanner()
    out: list[str] = []
    keys: list[str] = []
    for piece, is_key in _tokens(template):
        if not is_key:
            scanner.feed(piece)
            out.append(piece)
            continue
        text = to_text(resolve(piece, context, now=now))
        size = _arg_bytes(text, f"placeholder {{{piece}}}")
        if size >= MAX_ARG_BYTES:
            raise ActionError(
                f"placeholder {{{piece}}} is {size} bytes; values of "
                f"{MAX_ARG_BYTES} bytes or more cannot be passed on a command line, "
                "pass them to the command through a file or stdin"
            )
        out.append(scanner.escape(piece, text))
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
