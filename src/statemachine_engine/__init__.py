"""statemachine-engine: event-driven state machines described in YAML."""

from __future__ import annotations

__version__ = "2.0.0"

__all__ = ["__version__"]
