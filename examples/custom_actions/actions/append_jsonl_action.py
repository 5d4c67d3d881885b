"""`append_jsonl`: append one JSON object per line to a file (a simple, greppable log)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from statemachine_engine.actions import BaseAction
from statemachine_engine.errors import ActionError


class AppendJsonlAction(BaseAction):
    """Append `record` (placeholders rendered, types kept) as one JSON line to `path`,
    creating its directory; returns `success` if configured, else nothing."""

    provides: ClassVar[frozenset[str] | None] = frozenset()

    async def execute(self, context: dict[str, Any]) -> str | None:
        path = Path(str(self.param("path", context)))
        record = self.param("record", context)
        if not isinstance(record, dict):
            raise ActionError("append_jsonl: `record` must be a mapping")
        line = json.dumps(record, ensure_ascii=False, sort_keys=True, default=str)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")
        return self.event("success", None)
