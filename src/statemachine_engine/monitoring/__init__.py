"""Live monitoring: one ASGI app serving the web UI, a REST API and a WebSocket stream."""

from __future__ import annotations

from statemachine_engine.monitoring.app import UiConfig, create_app
from statemachine_engine.transport import UI_DOORBELL

__all__ = ["UI_DOORBELL", "UiConfig", "create_app"]
