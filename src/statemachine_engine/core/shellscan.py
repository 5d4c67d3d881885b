"""A lexer that follows bash's quoting through the literal text of a template: which
quotes, substitutions and expansions are open at each point, with backslash-newline removed
where bash removes it. `core/shellcode.py` builds on it to see words and commands."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

WORD_START = frozenset(" \t\n;&|()<>")
"""A `#` after one of these (or at the start) begins a comment."""
_NO_CONTINUATION = frozenset({"sq", "ansi", "comment"})
"""Contexts where backslash-newline is kept as text; everywhere else bash removes it."""


@dataclass
class Frame:
    """One open context: bare text, a quote, a substitution, an expansion or a comment;
    command frames (`bare`, `cmd`) also hold the words of the current simple command."""

    kind: str
    depth: int = 0
    dollar: bool = False
    brackets: str = "()"
    words: list[str] = field(default_factory=list)
    cur: list[str] = field(default_factory=list)
    in_word: bool = False
    redirect: bool = False
    test: list[str] | None = None
    compound: str | None = None


def _skip(text: str, i: int) -> int:
    """Index past any backslash-newline pairs at i (bash removes them before parsing)."""
    while text.startswith("\\\n", i):
        i += 2
    return i


def at(text: str, i: int, literal: str) -> int:
    """End index if `literal` is at i, letting backslash-newline sit between its characters."""
    for char in literal:
        i = _skip(text, i)
        if i >= len(text) or text[i] != char:
            return -1
        i += 1
    return i


class Lexer:
    """Feeds literal text through bash's quoting; `track` sees each character first."""

    def __init__(self) -> None:
        self.stack = [Frame("bare")]
        self.escaped = False
        self.prev = ""
        self.word_char = False
        self.blocked = ""

    def command_frame(self) -> Frame:
        return next(f for f in reversed(self.stack) if f.kind in ("bare", "cmd"))

    def feed(self, text: str) -> None:
        i = 0
        while i < len(text):
            if not self.escaped and self.stack[-1].kind not in _NO_CONTINUATION:
                skipped = _skip(text, i)
                if skipped != i:
                    i = skipped
                    continue
            was_escaped = self.escaped
            self.track(text, i)
            i = self._step(text, i)
            self.prev = "x" if was_escaped or self.word_char else text[i - 1]
            self.word_char = False

    def track(self, text: str, i: int) -> None:
        """Called for each character before it is consumed; words and commands go here."""

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
            self.stack.append(Frame("bt"))
        elif char == "$":
            return self._dollar(text, i, in_dq=kind == "dq")
        elif kind == "dq":
            if char == '"':
                self.stack.pop()
        elif char in "'\"":
            self.stack.append(Frame("sq" if char == "'" else "dq"))
        elif kind in ("bare", "cmd") and (end := at(text, i, "((")) > 0:
            self.stack.append(Frame("arith"))
            return end
        elif kind in ("param", "arith") or (kind == "cmd" and char in "()"):
            return self._nest(text, i, frame)
        else:
            return self._bare(text, i)
        return i + 1

    def _dollar(self, text: str, i: int, *, in_dq: bool) -> int:
        if (end := at(text, i, "$$")) > 0:
            return end
        openers = (
            ("$((", "arith", "()"),
            ("$(", "cmd", "()"),
            ("${", "param", "{}"),
            ("$[", "arith", "[]"),
            ("$'", "ansi", ""),
        )
        for opener, kind, brackets in openers:
            end = at(text, i, opener)
            if end > 0 and not (in_dq and kind == "ansi"):
                self.stack.append(Frame(kind, dollar=True, brackets=brackets))
                return end
        return i + 1

    def _nest(self, text: str, i: int, frame: Frame) -> int:
        """Count brackets; the one closing $(...), ${...}, $[...], <(...) or $((...)) ends a
        word char. `((`/`$((` closed by a lone `)` was a subshell, as bash reads it too."""
        opener, closer = frame.brackets[0], frame.brackets[1]
        if text[i] == opener:
            frame.depth += 1
        elif text[i] == closer:
            frame.depth -= 1
            if frame.depth >= 0:
                return i + 1
            paren_arith = frame.kind == "arith" and frame.brackets == "()"
            if paren_arith and at(text, i, "))") < 0:
                if frame.dollar:
                    frame.kind, frame.depth = "cmd", 0
                    return i + 1
                self.stack.pop()
                self.stack[-1].depth += 1
                return i + 1
            self.stack.pop()
            self.word_char = frame.dollar
            if paren_arith:
                return at(text, i, "))")
        return i + 1

    def _bare(self, text: str, i: int) -> int:
        at_word_start = self.prev == "" or self.prev in WORD_START
        if text[i] == "#" and at_word_start:
            self.stack.append(Frame("comment"))
        elif (end := max(at(text, i, "<("), at(text, i, ">("))) > 0:
            self.stack.append(Frame("cmd", dollar=True))
            return end
        elif (end := at(text, i, "<<<")) > 0:
            return end
        elif at(text, i, "<<") > 0:
            self.blocked = "after a here-document operator (<<)"
        elif at_word_start and re.match(r"case\b", text[i:]) and len(self.stack) > 1:
            self.blocked = "after a `case` inside $(...)"
        return i + 1
