"""Machine definitions: YAML dialects normalised into one frozen MachineDefinition."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from statemachine_engine.config.model import (
    ActionSpec,
    EventSpec,
    MachineDefinition,
    Position,
    Transition,
)

if TYPE_CHECKING:
    from statemachine_engine.config.loader import load_definition, parse_definition

__all__ = [
    "ActionSpec",
    "EventSpec",
    "MachineDefinition",
    "Position",
    "Transition",
    "load_definition",
    "parse_definition",
]

# Resolved on first use (PEP 562): core.shellcode imports config.placeholder_syntax, and
# must not import the loader, which imports core.shellcode (for the shell check).
_EXPORTS = {
    "load_definition": "statemachine_engine.config.loader",
    "parse_definition": "statemachine_engine.config.loader",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
