"""The engine: pure transition logic, the runtime loop, interpolation and the action loader."""

from __future__ import annotations

from statemachine_engine.core.engine import StateMachineEngine
from statemachine_engine.core.loader import ActionLoader

__all__ = ["ActionLoader", "StateMachineEngine"]
