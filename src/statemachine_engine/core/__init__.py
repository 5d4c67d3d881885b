"""The engine: pure transition logic, the runtime loop, interpolation and the action loader."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from statemachine_engine.core.engine import StateMachineEngine
    from statemachine_engine.core.loader import ActionLoader

__all__ = ["ActionLoader", "StateMachineEngine"]

# Resolved on first use (PEP 562): importing a core module, as actions.base imports
# core.interpolate, must not import the engine, which imports actions.base.
_EXPORTS = {
    "ActionLoader": "statemachine_engine.core.loader",
    "StateMachineEngine": "statemachine_engine.core.engine",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
