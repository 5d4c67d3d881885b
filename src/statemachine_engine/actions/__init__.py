"""Actions: BaseAction, what an action declares about itself, and the built-in actions."""

from __future__ import annotations

from statemachine_engine.actions.base import BaseAction, Declaration, Emits, Failure, Param

__all__ = ["BaseAction", "Declaration", "Emits", "Failure", "Param"]
