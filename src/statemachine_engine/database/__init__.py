"""Persistence: the store interface, its adapters and the model facades."""

from __future__ import annotations

from statemachine_engine.database.connect import default_url, open_store
from statemachine_engine.database.models import (
    Database,
    JobModel,
    MachineEventModel,
    MachineStateModel,
    RealtimeEventModel,
)
from statemachine_engine.database.records import Job, MachineEvent, MachineStatus, NewJob
from statemachine_engine.database.schedules import Schedule, ScheduleSpec
from statemachine_engine.database.store import Store
from statemachine_engine.ticks import Timing

__all__ = [
    "Database",
    "Job",
    "JobModel",
    "MachineEvent",
    "MachineEventModel",
    "MachineStateModel",
    "MachineStatus",
    "NewJob",
    "RealtimeEventModel",
    "Schedule",
    "ScheduleSpec",
    "Store",
    "Timing",
    "default_url",
    "open_store",
]
