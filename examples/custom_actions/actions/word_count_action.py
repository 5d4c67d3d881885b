"""`word_count`: count the lines, words and characters of a text and find its top word."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, ClassVar

from statemachine_engine.actions import BaseAction
from statemachine_engine.errors import ActionError

WORD_RE = re.compile(r"[^\W_]+(?:['-][^\W_]+)*")


class WordCountAction(BaseAction):
    """Store `{lines, words, chars, top_word}` of `text` under the context key `store_as`
    (default `stats`) and return `success` (default `counted`).

    Declaring `provides` lets the loader check `{stats...}` placeholders at load time; a key
    renamed with `store_as` is known to the loader without being listed here.
    """

    provides: ClassVar[frozenset[str] | None] = frozenset({"stats"})

    async def execute(self, context: dict[str, Any]) -> str | None:
        text = self.param("text", context)
        if not isinstance(text, str):
            raise ActionError(f"word_count: `text` must be a string, got {type(text).__name__}")
        words = [word.lower() for word in WORD_RE.findall(text)]
        top = Counter(words).most_common(1)
        context[str(self.config.get("store_as", "stats"))] = {
            "lines": len(text.splitlines()),
            "words": len(words),
            "chars": len(text),
            "top_word": top[0][0] if top else None,
        }
        return self.event("success", "counted")
