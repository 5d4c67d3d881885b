"""statemachine-engine: event-driven state machines described in YAML."""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "2.0.0"

__all__ = ["__version__"]

# 1.0 exported these from the package itself; they resolve on first use (PEP 562) to the
# same classes as their homes below, so `import statemachine_engine` stays light.
_RELEASED = {
    "StateMachineEngine": "statemachine_engine.core.engine",
    "ActionLoader": "statemachine_engine.core.loader",
    "BaseAction": "statemachine_engine.actions.base",
    "Database": "statemachine_engine.database.models",
    "JobModel": "statemachine_engine.database.models",
}


def __getattr__(name: str) -> Any:
    module = _RELEASED.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
