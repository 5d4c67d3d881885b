"""Actions: BaseAction, what an action declares about itself, and the built-in actions."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from statemachine_engine.actions.params import Declaration, Emits, Param

if TYPE_CHECKING:
    from statemachine_engine.actions.base import BaseAction, Failure

__all__ = ["BaseAction", "Declaration", "Emits", "Failure", "Param"]

# Resolved on first use (PEP 562): config.model imports actions.params, and must not import
# actions.base, which imports core.interpolate, which imports config.
_EXPORTS = {
    "BaseAction": "statemachine_engine.actions.base",
    "Failure": "statemachine_engine.actions.base",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
