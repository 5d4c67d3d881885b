"""The store written once over named SQL: every method of the Store contract, for any
dialect that provides a connection (database/tx.py) and a queries file."""

from __future__ import annotations

from statemachine_engine.clock import Clock
from statemachine_engine.database.attempts import AttemptLog
from statemachine_engine.database.events import EventBox
from statemachine_engine.database.history import MachineHistory
from statemachine_engine.database.jobs import JobQueue
from statemachine_engine.database.machines import MachineLog
from statemachine_engine.database.metrics import MetricsReader
from statemachine_engine.database.retention import Retention
from statemachine_engine.database.schedules import Schedules
from statemachine_engine.database.steps import StepLog
from statemachine_engine.database.stream import RealtimeStream
from statemachine_engine.database.tx import Connection


class SQLStore(
    JobQueue,
    EventBox,
    MachineLog,
    MachineHistory,
    StepLog,
    RealtimeStream,
    Retention,
    MetricsReader,
    Schedules,
    AttemptLog,
):
    """The Store contract (database.store.Store) on a dialect's connection."""

    url: str
    conn: Connection
    clock: Clock
    #: Names this store was refused registering (another live process runs them).
    refused_names: set[str]

    def close(self) -> None:
        self.conn.close()

    def give_up_waiting(self, at: float | None) -> None:
        self.conn.give_up_waiting(at)
