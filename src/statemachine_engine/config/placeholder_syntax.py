"""The placeholder grammar: `{root.path}`, fallbacks `{a|b}` and declared kinds `{a:int}`.

One tokenizer shared by rendering, the shell scanner and the load-time checks, so they all
agree on what is a placeholder and where it starts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from statemachine_engine.errors import ActionError

_PATH = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*"
PLACEHOLDER = re.compile(rf"\{{({_PATH}(?:\|{_PATH})*)(?::([A-Za-z]+))?\}}")
"""`{path}`, `{path|other.path}` (first one set), optionally `:kind` before the closing brace."""

KINDS: dict[str, tuple[re.Pattern[str], str]] = {
    "int": (re.compile(r"0|-?[1-9][0-9]*"), "a plain integer (digits, optional minus)"),
    "ident": (re.compile(r"[A-Za-z_][A-Za-z0-9_]*"), "an identifier (letters, digits, _)"),
}
"""Declared kinds: a value must match the pattern in full, or the action fails."""


@dataclass(frozen=True)
class Token:
    """Literal text (braces `{{`/`}}` already collapsed) or a placeholder as written."""

    text: str
    offset: int
    is_key: bool = False


@dataclass(frozen=True)
class Key:
    """A parsed placeholder: the paths to try in order and the declared kind, if any."""

    written: str
    paths: tuple[str, ...]
    kind: str | None

    @property
    def roots(self) -> tuple[str, ...]:
        return tuple(path.split(".", 1)[0] for path in self.paths)


@lru_cache(maxsize=4096)
def parse_key(written: str) -> Key:
    """`data.n|count:int` → paths ('data.n', 'count'), kind 'int'."""
    body, _, kind = written.partition(":")
    return Key(written, tuple(body.split("|")), kind or None)


def tokens(template: str) -> tuple[Token, ...]:
    """Split a template into literal text and placeholders, each with its offset.

    `{{` and `}}` are literal braces; a `{` right after `$` is shell syntax, not a placeholder.
    Templates are few and rendered once per step, so the split is kept (bounded cache).
    """
    return _split(template) if len(template) <= _CACHED_LENGTH else tuple(_scan(template))


_CACHED_LENGTH = 4096


@lru_cache(maxsize=1024)
def _split(template: str) -> tuple[Token, ...]:
    return tuple(_scan(template))


def _scan(template: str) -> Iterator[Token]:
    buf: list[str] = []
    start = i = 0
    n = len(template)
    after_dollar = False
    while i < n:
        char = template[i]
        match = None
        if char == "{" and not after_dollar and not template.startswith("{{", i):
            match = PLACEHOLDER.match(template, i)
        if match is not None:
            if buf:
                yield Token("".join(buf), start)
                buf.clear()
            yield Token(match.group(0)[1:-1], i, True)
            i = start = match.end()
        elif template.startswith(("{{", "}}"), i):
            buf.append(char)
            i += 2
        else:
            buf.append(char)
            i += 1
        after_dollar = match is None and char == "$"
    if buf:
        yield Token("".join(buf), start)


def check_kind(key: Key, text: str) -> str:
    """`text` if it fits the declared kind; else an ActionError naming the placeholder."""
    if key.kind is None:
        return text
    if key.kind not in KINDS:
        raise ActionError(
            f"placeholder {{{key.written}}} declares unknown kind '{key.kind}'; "
            f"use one of {', '.join(sorted(KINDS))}"
        )
    pattern, what = KINDS[key.kind]
    if pattern.fullmatch(text) is None:
        shown = text if len(text) <= 60 else text[:57] + "..."
        raise ActionError(
            f"placeholder {{{key.written}}} must be {what}, but its value is {shown!r}; "
            "the command was not run"
        )
    return text
