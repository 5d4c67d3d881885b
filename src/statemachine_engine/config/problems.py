"""Collects definition errors so the one written first in the file is the one reported."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from statemachine_engine.config.model import Position
from statemachine_engine.errors import ConfigError

_LINE_BREAKS = str.maketrans(
    {"\n": "\\n", "\r": "\\r", "\x85": "\\x85", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def one_line(text: str) -> str:
    """`text` with line breaks escaped, so an error message stays on one line."""
    return text.translate(_LINE_BREAKS)


def close_matches(word: str, choices: Iterable[str], n: int = 1) -> list[str]:
    """Up to `n` entries of `choices` that look like a misspelling of `word`."""
    return difflib.get_close_matches(word, sorted(set(choices)), n=n, cutoff=0.6)


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """A `did you mean 'x'?` hint, or None when nothing is close."""
    matches = close_matches(word, choices)
    return f"did you mean '{matches[0]}'?" if matches else None


class Problems:
    """Error sink used while validating; `raise_first` raises the earliest in document order."""

    def __init__(self) -> None:
        self.errors: list[ConfigError] = []

    def add(
        self, pos: Position, message: str, hint: str | None = None, *, code: str | None = None
    ) -> None:
        """Record an error at `pos`; line breaks from user text are escaped to keep one line."""
        message = one_line(message)
        hint = None if hint is None else one_line(hint)
        self.errors.append(
            ConfigError(
                message, file=pos.file, line=pos.line, column=pos.column, hint=hint, code=code
            )
        )

    def raise_first(self) -> None:
        """Raise the error written first in the file, if any was recorded."""
        if self.errors:
            raise min(self.errors, key=lambda e: (e.line or 0, e.column or 0))
