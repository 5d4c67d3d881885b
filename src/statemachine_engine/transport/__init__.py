"""Per-machine Unix datagram sockets used as doorbells: the database is the source of truth."""

from __future__ import annotations

from statemachine_engine.transport.doorbell import (
    MAX_MESSAGE_BYTES,
    UI_DOORBELL,
    Doorbell,
    ring,
    ring_all,
)
from statemachine_engine.transport.runtime_dir import running_machines, runtime_dir, socket_path

__all__ = [
    "MAX_MESSAGE_BYTES",
    "UI_DOORBELL",
    "Doorbell",
    "ring",
    "ring_all",
    "running_machines",
    "runtime_dir",
    "socket_path",
]
