"""The one rule for names: states, events, machine names and job ids.

A name appears in log lines, file names (sockets, lock files), URL paths of the web UI and
shell commands, so it is kept to characters that are safe in all of them: 1 to NAME_MAX
ASCII letters, digits and `_ . : -`, starting with a letter or a digit. No spaces, slashes,
control or format characters (newlines, NUL, right-to-left overrides) can get in.
"""

from __future__ import annotations

import re

from statemachine_engine.errors import StateMachineError

NAME_MAX = 100
NAME_RULE = f"1-{NAME_MAX} characters from A-Z a-z 0-9 _ . : - starting with a letter or digit"
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]*")
_SHOWN = 40


class InvalidNameError(StateMachineError, ValueError):
    """A name breaks the name rule; the message is one line and shows the name safely."""


def shown(value: object) -> str:
    """`value` as it may appear in a one-line message: escaped and cut to a short prefix."""
    if not isinstance(value, str):
        return repr(value)
    text = repr(value[:_SHOWN]).encode("ascii", "backslashreplace").decode("ascii")
    if len(value) > _SHOWN:
        text += f"... ({len(value)} characters)"
    return text


def name_problem(value: object) -> str | None:
    """Why `value` is not a valid name, or None when it is."""
    if not isinstance(value, str) or not value:
        return "it must be a non-empty string"
    if len(value) > NAME_MAX:
        return f"it has {len(value)} characters, more than {NAME_MAX}"
    if not _NAME_RE.fullmatch(value):
        return f"use {NAME_RULE}"
    return None


def is_valid_name(value: object) -> bool:
    """True when `value` follows the name rule."""
    return name_problem(value) is None


def check_name(value: object, what: str) -> str:
    """Return `value` if it follows the name rule, else raise InvalidNameError saying
    `invalid <what> <name>: <why>` on one line (`what` is e.g. "job id")."""
    problem = name_problem(value)
    if problem is not None:
        raise InvalidNameError(f"invalid {what} {shown(value)}: {problem}")
    assert isinstance(value, str)
    return value
