"""1.0's model accessors: `get_database()` (one shared Database per process) and
`get_job_model()`, `get_machine_event_model()`, `get_realtime_event_model()`,
`get_machine_state_model()` over it. The database is 2.0's default (`$STATEMACHINE_DB`, else
`sqlite:///./data/statemachine.db`), not 1.0's `data/pipeline.db`."""

from __future__ import annotations

import threading
import warnings

from statemachine_engine.database.models import (
    Database,
    JobModel,
    MachineEventModel,
    MachineStateModel,
    RealtimeEventModel,
)

_lock = threading.Lock()
_shared: Database | None = None


def _deprecated(name: str, instead: str) -> None:
    warnings.warn(f"{name}() is the 1.0 API; use {instead}", DeprecationWarning, stacklevel=3)


def _database() -> Database:
    global _shared
    with _lock:
        if _shared is None:
            _shared = Database()
        return _shared


def get_database() -> Database:
    """The process's shared Database on the default URL (opened on first use)."""
    _deprecated("get_database", "Database(url)")
    return _database()


def get_job_model() -> JobModel:
    _deprecated("get_job_model", "JobModel(Database(url))")
    return JobModel(_database())


def get_machine_event_model() -> MachineEventModel:
    _deprecated("get_machine_event_model", "MachineEventModel(Database(url))")
    return MachineEventModel(_database())


def get_realtime_event_model() -> RealtimeEventModel:
    _deprecated("get_realtime_event_model", "RealtimeEventModel(Database(url))")
    return RealtimeEventModel(_database())


def get_machine_state_model() -> MachineStateModel:
    _deprecated("get_machine_state_model", "MachineStateModel(Database(url))")
    return MachineStateModel(_database())


def close_database() -> None:
    """Close the shared Database (the next accessor call opens it again)."""
    global _shared
    with _lock:
        if _shared is not None:
            _shared.close()
            _shared = None
