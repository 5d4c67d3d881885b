"""Model facades of DESIGN §9: `Database(url)` plus one small model per table family."""

from __future__ import annotations

import builtins
import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from statemachine_engine.clock import Clock
from statemachine_engine.database.connect import open_store
from statemachine_engine.database.store import DEFAULT_PRIORITY, Store


class Database:
    """An open store chosen by URL (`sqlite:///...` by default); usable as a context manager."""

    def __init__(
        self,
        url: str | None = None,
        *,
        schema_dirs: Sequence[str | Path] = (),
        clock: Clock | None = None,
    ) -> None:
        self.store: Store = open_store(url, schema_dirs=schema_dirs, clock=clock)
        self.url = self.store.url

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class JobModel:
    """The job queue, as dictionaries."""

    def __init__(self, db: Database) -> None:
        self.store = db.store

    def create_job(
        self,
        job_type: str,
        *released_order: object,
        data: Any = None,
        job_id: str | None = None,
        machine_type: str | None = None,
        priority: int = DEFAULT_PRIORITY,
    ) -> str:
        """Add a job; the id is generated unless `job_id` is given. Only `job_type` is
        positional: 1.0's `create_job(job_id, job_type)` would otherwise silently create a
        job of type `job_id`, so a second positional argument is refused."""
        if released_order:
            raise TypeError(
                "JobModel.create_job takes one positional argument, the job type; 1.0's "
                "create_job(job_id, job_type, ...) is create_job(job_type, job_id=..., "
                "data=...) now"
            )
        job = self.store.add_job(
            job_type, data, job_id=job_id, machine_type=machine_type, priority=priority
        )
        return job.job_id

    def get_job(self, job_id: str) -> dict[str, Any] | None:
        job = self.store.get_job(job_id)
        return job.to_dict() if job else None

    def list_jobs(
        self, *, status: str | None = None, job_type: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        jobs = self.store.list_jobs(status=status, job_type=job_type, limit=limit)
        return [j.to_dict() for j in jobs]

    def count_by_status(self, job_type: str | None = None) -> dict[str, int]:
        return self.store.count_jobs(job_type=job_type)


class MachineEventModel:
    """Durable events between machines."""

    def __init__(self, db: Database) -> None:
        self.store = db.store

    def send_event(
        self, target: str, event_type: str, payload: Any = None, *, source: str | None = None
    ) -> int:
        return self.store.send_event(target, event_type, payload, source=source).id

    def pending(self, target: str, limit: int = 100) -> list[dict[str, Any]]:
        """Pending events for target, oldest first; with more than `limit` pending, the
        newest `limit` of them (the store lists events newest first)."""
        events = self.store.list_events(target=target, status="pending", limit=limit)
        return [e.to_dict() for e in reversed(events)]


class MachineStateModel:
    """Where each machine is."""

    def __init__(self, db: Database) -> None:
        self.store = db.store

    def get(self, machine_name: str) -> dict[str, Any] | None:
        status = self.store.get_machine(machine_name)
        return status.to_dict() if status else None

    def list(self) -> list[dict[str, Any]]:
        return [m.to_dict() for m in self.store.list_machines()]

    def history(
        self, machine_name: str | None = None, limit: int = 100
    ) -> builtins.list[dict[str, Any]]:
        return [t.to_dict() for t in self.store.history(machine=machine_name, limit=limit)]


class RealtimeEventModel:
    """The change stream the monitoring UI reads."""

    def __init__(self, db: Database) -> None:
        self.store = db.store

    def since(self, after_id: int = 0, limit: int = 500) -> list[dict[str, Any]]:
        return [e.to_dict() for e in self.store.realtime_since(after_id, limit)]


#: 1.0's accessors, importable from here as they were (`compat.models`).
_RELEASED = {
    "get_database",
    "get_job_model",
    "get_machine_event_model",
    "get_machine_state_model",
    "get_realtime_event_model",
}


def __getattr__(name: str) -> Any:
    if name in _RELEASED:
        return getattr(importlib.import_module("statemachine_engine.compat.models"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
