"""Where each placeholder of a bash template lands: how to escape it, or why it cannot be.

The lexer (`core/shellscan.py`) gives the quoting, which decides the escaping; here words and
simple commands decide whether bash would evaluate the text as code even when quoted
(arithmetic, array subscripts, arguments naming variables, variables later used so). Why this
is hand-written rather than a grammar library: docs/decisions.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from statemachine_engine.config.placeholder_syntax import tokens
from statemachine_engine.core.shellscan import WORD_START, Frame, Lexer, at

_REFUSED = {"bt": "inside backticks", "param": "inside a ${...} expansion"}

_ARITH_OPS = frozenset({"-eq", "-ne", "-lt", "-le", "-gt", "-ge"})
_NAME_TESTS = frozenset({"-v", "-R"})
_DECLARE = frozenset({"declare", "typeset", "local", "export", "readonly"})
_NAME_ARGS = frozenset({"read", "unset", "mapfile", "readarray", "getopts"})
_CODE_ARGS = {
    "let": "an argument of `let`, which is arithmetic",
    "eval": "an argument of `eval`, which runs it as a command",
    "trap": "an argument of `trap`, which runs it as a command",
}
_PREFIX_WORDS = frozenset(
    {"!", "time", "if", "then", "else", "elif", "do", "while", "until", "{", "command", "builtin"}
)
_ASSIGN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(\[[^\]]*\])?\+?=")
_SUBSCRIPT = re.compile(r"(?:[A-Za-z_][A-Za-z0-9_]*)?\[[^\]]*\Z")
_ARITH = "an arithmetic expression"
_NAMES = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_EXPANDED = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class Slot:
    """One placeholder: its quoting context and, if any, why no value or only a declared
    number/identifier may go there."""

    key: str
    offset: int
    quoting: str
    refused: str = ""
    evaluates: str = ""


def _plain(word: str) -> str:
    """A word with quote characters and backslashes dropped (enough to spot keywords)."""
    return word.translate({ord("'"): None, ord('"'): None, ord("\\"): None})


class _Scanner(Lexer):
    """The lexer plus words and commands; `place` tells where a placeholder lands."""

    def __init__(self, code_names: frozenset[str], array_names: frozenset[str]) -> None:
        super().__init__()
        self.code_names, self.array_names = code_names, array_names
        self.declared_int: set[str] = set()
        self.declared_array: set[str] = set()
        self.tests: list[tuple[int, list[str], int]] = []
        self.slots: list[Slot] = []
        self.arith_text: list[str] = []
        self.evaluated: set[str] = set()

    def track(self, text: str, i: int) -> None:
        """Word and command bookkeeping for the character at i, before it is consumed."""
        frame, top, char = self.command_frame(), self.stack[-1], text[i]
        if top.kind == "arith":
            self.arith_text.append(char)
        if top.kind == "comment":
            if char == "\n":
                self._end_command(frame)
        elif top is not frame or self.escaped:
            frame.cur.append(char)
            frame.in_word = True
        elif char == "#" and (self.prev == "" or self.prev in WORD_START):
            self._end_word(frame)
        elif char in ("<", ">") and frame.test is None and at(text, i + 1, "(") < 0:
            self._end_word(frame)
            frame.redirect = True
        elif char in "&|" and (self.prev in ("<", ">") or text[i + 1 : i + 2] == ">"):
            frame.redirect = True
        elif char in " \t":
            self._end_word(frame)
        elif (
            char == "("
            and frame.test is None
            and (assign := _ASSIGN.fullmatch(cur := "".join(frame.cur)))
        ):
            self._note_declaration(frame.words, cur)
            frame.compound = assign.group(1)
            frame.cur.clear()
            frame.in_word = False
        elif char == ")" and frame.compound is not None:
            self._end_word(frame)
            frame.compound = None
            frame.cur.append("x")
            frame.in_word = True
        elif char in "\n;&|()":
            self._end_word(frame)
            if frame.test is not None:
                frame.test.append(char)
            else:
                self._end_command(frame)
        else:
            frame.cur.append(char)
            frame.in_word = True

    def _start_compound(self, frame: Frame) -> None:
        """`NAME=(` opens a compound array assignment; its elements are not command words."""
        word = "".join(frame.cur)
        self._note_declaration(frame.words, word)
        frame.compound = word.split("=", 1)[0].rstrip("+")

    def _end_command(self, frame: Frame) -> None:
        self._end_word(frame)
        frame.words.clear()
        frame.redirect = False
        frame.compound = None
        frame.test = None

    def _end_word(self, frame: Frame) -> None:
        if not frame.in_word:
            return
        word = "".join(frame.cur)
        self._note_evaluated(frame, word)
        frame.cur.clear()
        frame.in_word = False
        if frame.redirect:
            frame.redirect = False
        elif frame.compound is not None:
            return
        elif frame.test is not None:
            if word == "]]":
                self._note_test(frame.test)
                frame.test = None
                frame.words.append(word)
            else:
                frame.test.append(word)
        elif word == "[[" and all(_plain(w) in _PREFIX_WORDS for w in frame.words):
            frame.test = []
        else:
            self._note_declaration(frame.words, word)
            frame.words.append(word)

    def _note_evaluated(self, frame: Frame, word: str) -> None:
        """Variables expanded in a word bash evaluates as code (`let "n=$v"`, `read $v`,
        `arr[$i]=x`, `n=$v` for an integer n) are evaluated too: assigning a placeholder to
        them is as unsafe as writing it there."""
        if frame.test is not None or word.startswith(("-", "+")):
            return
        if self._evaluates(frame, word):
            name = _command(frame.words)[0]
            names_only = name in _NAME_ARGS or name in ("printf", "wait", "test", "[")
            if names_only or (name in _DECLARE and "=" not in word):
                self.evaluated.update(_EXPANDED.findall(word))
            else:
                self.evaluated.update(_NAMES.findall(word))
        assign = _ASSIGN.match(word)
        if assign and assign.group(2):
            self.evaluated.update(_NAMES.findall(assign.group(2)))

    def _note_test(self, words: list[str]) -> None:
        """Variables in operands of `[[ … -eq … ]]` and `[[ -v … ]]` are evaluated as code."""
        for i, word in enumerate(words):
            if _plain(word) in _ARITH_OPS:
                for operand in words[max(i - 1, 0) : i] + words[i + 1 : i + 2]:
                    self.evaluated.update(_NAMES.findall(operand))
            elif _plain(word) in _NAME_TESTS and i + 1 < len(words):
                self.evaluated.update(_EXPANDED.findall(words[i + 1]))

    def _note_declaration(self, words: list[str], word: str) -> None:
        """Names declared integer or array anywhere make assignments to them arithmetic."""
        name, args = _command(words)
        if name not in _DECLARE or word.startswith(("-", "+")):
            return
        options = _options(args)
        match = _ASSIGN.match(word) or re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", word)
        if match is None:
            return
        var = match.group(1) if match.re is _ASSIGN else match.group(0)
        if "i" in options or "n" in options:
            self.declared_int.add(var)
        if "a" in options or "A" in options:
            self.declared_array.add(var)

    def place(self, key: str, offset: int) -> Slot:
        """The slot of a placeholder at the current position; the scan then goes on past it
        as if a word character stood there."""
        kind = self.stack[-1].kind
        refused = self.blocked or next(
            (_REFUSED[f.kind] for f in self.stack if f.kind in _REFUSED), ""
        )
        if self.escaped:
            refused = "right after a backslash"
        evaluates = ""
        if not refused and kind != "comment":
            evaluates = self._evaluates_in_stack(len(self.slots))
        for frame in self.stack:
            if frame.kind in ("bare", "cmd"):
                frame.cur.append("\x00")
                frame.in_word = True
        self.escaped = False
        self.prev = "x"
        quoting = "bare" if kind == "cmd" else kind
        slot = Slot(key, offset, quoting, refused, evaluates)
        self.slots.append(slot)
        return slot

    def _evaluates_in_stack(self, index: int) -> str:
        """Why bash would evaluate the text here, looking at every enclosing frame: a value
        printed by `$(...)` inside `$((...))` or in a `read` argument is evaluated too."""
        for frame in self.stack:
            if frame.kind == "arith":
                return _ARITH
            if frame.kind in ("bare", "cmd"):
                reason = self._evaluates(frame, "".join(frame.cur))
                if reason:
                    return reason
                if frame.test is not None:
                    self.tests.append((index, frame.test, len(frame.test)))
        return ""

    def _evaluates(self, frame: Frame, cur: str) -> str:
        """Why bash evaluates the word `cur` (so far) of `frame` as code, or ""."""
        if frame.redirect:
            name, args = _command(frame.words)
            targets = [_plain(a) for a in args if _plain(a) in self.code_names]
            if name in _NAME_ARGS and targets:
                return f"input `{name}` stores in {targets[0]}, whose value bash evaluates as code"
            return ""
        if _SUBSCRIPT.match(cur):
            return "an array subscript"
        if frame.test is not None:
            return ""
        if frame.compound is not None:
            if frame.compound in self.code_names:
                return f"an element of {frame.compound}, whose value bash evaluates as code"
            return ""
        name, args = _command(frame.words)
        assign = _ASSIGN.match(cur)
        if name is None:
            if assign and assign.group(1) in self.code_names:
                return f"an assignment to {assign.group(1)}, whose value bash evaluates as code"
            return ""
        previous = _plain(args[-1]) if args else ""
        if name in ("for", "select") and args and _plain(args[0]) in self.code_names:
            return f"the words of a loop over {_plain(args[0])}, whose value bash evaluates as code"
        if name in _CODE_ARGS:
            return _CODE_ARGS[name]
        if name in _NAME_ARGS:
            return f"an argument of `{name}`, which names a variable"
        if (name == "printf" and (previous == "-v" or cur.startswith("-v"))) or (
            name == "wait" and previous == "-p"
        ):
            return f"the variable name given to `{name}`"
        if name in ("test", "[") and previous in _NAME_TESTS:
            return f"the operand of `{previous}`, which names a variable"
        if name in _DECLARE and not cur.startswith(("-", "+")):
            if assign is None:
                return f"a variable name given to `{name}`"
            options = set(_options(args))
            var = assign.group(1)
            if options & set("iaAn") or var in self.code_names | self.array_names:
                return f"the value `{name}` gives {var}, which bash evaluates as code"
        return ""

    def finish(self) -> list[Slot]:
        """Slots, with `[[ ]]` operands resolved now that the words after them are known."""
        slots = list(self.slots)
        for index, words, position in self.tests:
            before = _plain(words[position - 1]) if position > 0 else ""
            after = _plain(words[position + 1]) if position + 1 < len(words) else ""
            if before in _NAME_TESTS:
                reason = f"the operand of `[[ {before} ]]`, which names a variable"
            elif before in _ARITH_OPS or after in _ARITH_OPS:
                reason = f"an operand of `[[ {before if before in _ARITH_OPS else after} ]]`, "
                reason += "which is arithmetic"
            else:
                continue
            slot = slots[index]
            if slot.evaluates:
                continue
            slots[index] = Slot(slot.key, slot.offset, slot.quoting, slot.refused, reason)
        return slots


def _command(words: list[str]) -> tuple[str | None, list[str]]:
    """The command name of a simple command's words (past keywords, assignments) and its
    arguments; None while only keywords and assignments were seen."""
    pos = 0
    while pos < len(words) and (_plain(words[pos]) in _PREFIX_WORDS or _ASSIGN.match(words[pos])):
        pos += 1
    if pos == len(words):
        return None, []
    return _plain(words[pos]), words[pos + 1 :]


def _options(args: list[str]) -> str:
    return "".join(_plain(a)[1:] for a in args if a.startswith(("-", "+")) and _plain(a) != "--")


def _scan(template: str, code_names: frozenset[str], array_names: frozenset[str]) -> _Scanner:
    scanner = _Scanner(code_names, array_names)
    for token in tokens(template):
        if token.is_key:
            scanner.place(token.text, token.offset)
        else:
            scanner.feed(token.text)
    for frame in scanner.stack:
        if frame.kind in ("bare", "cmd"):
            scanner._end_word(frame)
    return scanner


_PARAM_NAMES = (
    re.compile(r"\$\{!([A-Za-z_][A-Za-z0-9_]*)"),
    re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\[([^\]]*)\]"),
    re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*:(?![-=+?])([^}]*)\}"),
    re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:\[[^\]]*\])?@P\}"),
)
"""`${!v}`, `${a[i]}`, `${s:i:n}`, `${v@P}`: names whose values bash evaluates (read over
the raw template, so a match inside quotes only makes the check stricter)."""
_MAX_PASSES = 6
_CODE_VARIABLES = frozenset({"PS0", "PS1", "PS2", "PS3", "PS4", "PROMPT_COMMAND"})
"""Variables bash itself expands as prompts or runs as commands (`PS4` under `set -x`)."""


def _evaluated_names(template: str, scanner: _Scanner) -> frozenset[str]:
    names = set(scanner.declared_int) | scanner.evaluated
    names.update(_NAMES.findall("".join(scanner.arith_text)))
    for pattern in _PARAM_NAMES:
        for found in pattern.findall(template):
            names.update(_NAMES.findall(found))
    return frozenset(names)


@lru_cache(maxsize=512)
def analyze(template: str) -> tuple[Slot, ...]:
    """Every placeholder of a bash template with its quoting and any reason it is unsafe.

    Repeated passes find the variables whose values bash evaluates as code (declared
    `declare -i n`, used in `$((n))`, `[[ $n -eq 1 ]]`, `let`, `${!n}`, `read $n`, assigned to
    such a variable...), until no new one appears, so a placeholder assigned to one of them,
    before or after its use, is refused like one written in its place.
    """
    names: frozenset[str] = _CODE_VARIABLES
    arrays: frozenset[str] = frozenset()
    scanner = _scan(template, names, arrays)
    for _ in range(_MAX_PASSES):
        found = _evaluated_names(template, scanner) | names
        found_arrays = frozenset(scanner.declared_array)
        if found == names and found_arrays == arrays:
            break
        names, arrays = found, found_arrays
        scanner = _scan(template, names, arrays)
    return tuple(scanner.finish())
