"""`log` and `activity_log`: a log line, and one that also shows in the UI's activity feed."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from statemachine_engine.actions.base import BaseAction, Declaration, Emits, Param
from statemachine_engine.actions.params import IF_HANDLED
from statemachine_engine.core.interpolate import render_visible

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "success": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}


class LogAction(BaseAction):
    """Log `message` at `level`; returns `success` if configured, else `continue` when the
    state has a transition on it (the released default). A placeholder without a value is
    written as is (`{x}`) with a WARNING: a log line never stops a machine."""

    type_name: ClassVar[str] = "log"
    provides: ClassVar[frozenset[str] | None] = frozenset()
    instant: ClassVar[bool] = True
    declaration: ClassVar[Declaration] = Declaration(
        params=(
            Param("message", "text", doc="the line; placeholders rendered"),
            Param("level", "name", doc="debug, info (default), success, warning or error"),
        ),
        emits=(Emits("success", "continue", doc=IF_HANDLED, if_handled=True),),
        renders_missing=True,
    )

    async def execute(self, context: dict[str, Any]) -> str | None:
        message, missing = render_visible(str(self.config.get("message", "")), context)
        if missing:
            self.logger.warning(
                "[%s] %s in state '%s': %s not set, written as is",
                context.get("machine_name"),
                self.type_name,
                context.get("current_state"),
                ", ".join("{" + key + "}" for key in missing),
            )
        level = str(self.config.get("level", "info")).lower()
        logging.getLogger("statemachine_engine.log").log(
            _LEVELS.get(level, logging.INFO), "[%s] %s", context.get("machine_name"), message
        )
        self.after(message, level)
        return self.event_if_handled("success", "continue", context)

    def after(self, message: str, level: str) -> None:
        """Hook for subclasses."""


class ActivityLogAction(LogAction):
    """Like `log`, and the line appears in the monitoring UI's activity feed."""

    type_name: ClassVar[str] = "activity_log"

    def after(self, message: str, level: str) -> None:
        self.runtime.activity(message, level)
