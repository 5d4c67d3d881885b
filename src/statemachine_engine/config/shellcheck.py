"""Load-time checks of `bash` commands: placeholders where bash would run job data as code,
placeholders no escaping can protect, and commands that are not valid shell (`bash -n`)."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from functools import lru_cache

from statemachine_engine.config.actionspecs import ParsedAction
from statemachine_engine.config.model import Position
from statemachine_engine.config.placeholder_syntax import KINDS, parse_key, tokens
from statemachine_engine.config.problems import Problems
from statemachine_engine.config.yamlsource import YamlStr, yaml_strings
from statemachine_engine.core.shellcode import Slot, analyze

UNSAFE = "SM120"
"""A placeholder where bash evaluates text as code, not declared `:int` or `:ident`."""
INVALID_SHELL = "SM121"
"""A `bash` command that is not valid shell (`bash -n` fails)."""
UNESCAPABLE = "SM122"
"""A placeholder where no value can be escaped (backticks, `${...}`, here-document...)."""
UNKNOWN_KIND = "SM123"
"""A placeholder declaring a kind other than `int` or `ident`."""

_STAND_IN = "0"
"""Replaces each placeholder for `bash -n`: a word, a number and harmless everywhere."""
_BASH_LINE = re.compile(r"line (\d+): (.*)")


def check_shell_commands(actions: Sequence[ParsedAction], text: str, problems: Problems) -> None:
    """Record a problem for each unsafe placeholder and each `bash` command bash cannot parse."""
    for action in actions:
        for value in yaml_strings(action.raw_params):
            _check_kinds(value, text, problems)
        command = action.raw_params.get("command")
        if action.spec.type != "bash" or not isinstance(command, YamlStr):
            continue
        for slot in analyze(command):
            _check_slot(slot, command, text, problems)
        error = syntax_error(command)
        if error is not None:
            line, message = error
            problems.add(
                _line_position(command, line, text),
                f"bash command is not valid shell: {message}",
                "fix the shell syntax; `bash -n -c '...'` shows the same error",
                code=INVALID_SHELL,
            )


def _check_kinds(value: YamlStr, text: str, problems: Problems) -> None:
    for token in tokens(value):
        if not token.is_key:
            continue
        kind = parse_key(token.text).kind
        if kind is not None and kind not in KINDS:
            problems.add(
                _placeholder_position(value, token.offset, token.text, text),
                f"placeholder {{{token.text}}} declares unknown kind '{kind}'",
                f"use one of {', '.join(f':{k}' for k in sorted(KINDS))}, or no kind",
                code=UNKNOWN_KIND,
            )


def _check_slot(slot: Slot, command: YamlStr, text: str, problems: Problems) -> None:
    pos = _placeholder_position(command, slot.offset, slot.key, text)
    if slot.refused:
        problems.add(
            pos,
            f"placeholder {{{slot.key}}} sits {slot.refused} in a bash command, where no value "
            "can be escaped safely",
            "move it into a plain, '...' or \"...\" word, or pass the value through `env:`",
            code=UNESCAPABLE,
        )
    elif slot.evaluates and parse_key(slot.key).kind is None:
        problems.add(
            pos,
            f"placeholder {{{slot.key}}} sits in {slot.evaluates}; bash runs text there as "
            "code even when quoted",
            f"declare it numeric as {{{slot.key}:int}} or a name as {{{slot.key}:ident}}: any "
            "other value then fails the action before the command runs",
            code=UNSAFE,
        )


@lru_cache(maxsize=512)
def syntax_error(command: str) -> tuple[int, str] | None:
    """(line in the command, bash's message) when `bash -n` rejects the command with every
    placeholder replaced by a stand-in; None when it parses or bash cannot be run."""
    stand_in = "".join(_STAND_IN if t.is_key else t.text for t in tokens(command))
    try:
        proc = subprocess.run(
            ["bash", "-n", "-O", "extglob", "-c", stand_in],
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode == 0:
        return None
    stderr = proc.stderr.decode("utf-8", "replace").strip()
    match = _BASH_LINE.search(stderr)
    if match is None:
        return 1, stderr.splitlines()[0] if stderr else f"bash -n exited {proc.returncode}"
    return int(match.group(1)), match.group(2)


def _offset(text: str, pos: Position) -> int:
    """Index in `text` of a 1-based line and column."""
    lines = text.splitlines(keepends=True)
    return sum(len(line) for line in lines[: pos.line - 1]) + pos.column - 1


def _position_at(text: str, index: int, file: str) -> Position:
    line = text.count("\n", 0, index) + 1
    return Position(file, line, index - (text.rfind("\n", 0, index) + 1) + 1)


def _placeholder_position(value: YamlStr, offset: int, key: str, text: str) -> Position:
    """Where in the file the placeholder starting at `offset` of the value was written: the
    same occurrence of its text after the scalar's start (the value's own start otherwise)."""
    written = "{" + key + "}"
    nth = value.count(written, 0, offset)
    index = _offset(text, value.pos)
    for _ in range(nth + 1):
        index = text.find(written, index)
        if index < 0:
            return value.pos
        index += 1
    return _position_at(text, index - 1, value.pos.file)


def _line_position(value: YamlStr, line: int, text: str) -> Position:
    """Where line `line` of a command was written: its text found after the scalar's start."""
    lines = value.split("\n")
    wanted = lines[line - 1].strip() if 0 < line <= len(lines) else ""
    index = text.find(wanted, _offset(text, value.pos)) if wanted else -1
    return value.pos if index < 0 else _position_at(text, index, value.pos.file)
