"""`log` and `activity_log`: a log line, and one that also shows in the UI's activity feed."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from statemachine_engine.actions.base import BaseAction, Declaration, Emits, Param
from statemachine_engine.core.interpolate import render_text

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "success": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}


class LogAction(BaseAction):
    """Log `message` (placeholders rendered) at `level`; returns `success` if configured."""

    provides: ClassVar[frozenset[str] | None] = frozenset()
    instant: ClassVar[bool] = True
    declaration: ClassVar[Declaration] = Declaration(
        params=(
            Param("message", "text", doc="the line; placeholders rendered"),
            Param("level", "name", doc="debug, info (default), success, warning or error"),
        ),
        emits=(Emits("success", None),),
    )

    async def execute(self, context: dict[str, Any]) -> str | None:
        message = render_text(str(self.config.get("message", "")), context)
        level = str(self.config.get("level", "info")).lower()
        logging.getLogger("statemachine_engine.log").log(
            _LEVELS.get(level, logging.INFO), "[%s] %s", context.get("machine_name"), message
        )
        self.after(message, level)
        return self.event("success", None)

    def after(self, message: str, level: str) -> None:
        """Hook for subclasses."""


class ActivityLogAction(LogAction):
    """Like `log`, and the line appears in the monitoring UI's activity feed."""

    def after(self, message: str, level: str) -> None:
        self.runtime.activity(message, level)
