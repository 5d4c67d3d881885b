"""Actions: BaseAction and the built-in actions."""

from __future__ import annotations

from statemachine_engine.actions.base import BaseAction

__all__ = ["BaseAction"]
