"""Machine definitions: YAML dialects normalised into one frozen MachineDefinition."""

from __future__ import annotations

from statemachine_engine.config.loader import load_definition, parse_definition
from statemachine_engine.config.model import (
    ActionSpec,
    EventSpec,
    MachineDefinition,
    Position,
    Transition,
)

__all__ = [
    "ActionSpec",
    "EventSpec",
    "MachineDefinition",
    "Position",
    "Transition",
    "load_definition",
    "parse_definition",
]
