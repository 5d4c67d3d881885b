"""Metrics, written once for every dialect: the counts a scrape reports, read in one
transaction so that every number describes the same moment."""

from __future__ import annotations

from dataclasses import dataclass, field

from statemachine_engine.clock import Clock
from statemachine_engine.database.records import MachineStatus
from statemachine_engine.database.rows import machine_from_row
from statemachine_engine.database.tx import Connection, Tx

#: Upper bounds (seconds) of the time-in-state histogram; the statement
#: `metrics_state_durations` takes them as parameters b0..b9.
STATE_SECONDS_BUCKETS = (0.01, 0.1, 1.0, 10.0, 60.0, 300.0, 1800.0, 3600.0, 21600.0, 86400.0)


@dataclass(frozen=True)
class JobCounts:
    """Jobs of one type in one status, their attempts and their failed attempts."""

    job_type: str
    status: str
    jobs: int
    attempts: int
    failures: int


@dataclass(frozen=True)
class StateDurations:
    """Completed stays of one machine in one state: a histogram with cumulative buckets."""

    machine_name: str
    state: str
    count: int
    total_seconds: float
    #: Stays at most as long as each bound of STATE_SECONDS_BUCKETS, cumulative.
    buckets: tuple[int, ...]


@dataclass(frozen=True)
class MetricsSnapshot:
    """Everything `/metrics` reports, read at one instant `at` of the store's clock."""

    at: float
    jobs: list[JobCounts]
    oldest_pending: dict[str, float]
    transitions: dict[str, int]
    event_depth: dict[str, int]
    durations: list[StateDurations]
    machines: list[MachineStatus]
    #: Dwell alerts (`stuck` stream rows) by (machine, state).
    stuck: dict[tuple[str, str], int] = field(default_factory=dict)


def _durations(tx: Tx) -> list[StateDurations]:
    bounds = {f"b{i}": bound for i, bound in enumerate(STATE_SECONDS_BUCKETS)}
    return [
        StateDurations(
            machine_name=r["machine_name"],
            state=r["state"],
            count=int(r["n"]),
            total_seconds=float(r["total"] or 0.0),
            buckets=tuple(int(r[f"b{i}"] or 0) for i in range(len(STATE_SECONDS_BUCKETS))),
        )
        for r in tx.query("metrics_state_durations", bounds)
    ]


class MetricsReader:
    """`metrics_snapshot` of the Store contract."""

    conn: Connection
    clock: Clock

    def metrics_snapshot(self) -> MetricsSnapshot:
        at = self.clock.now()  # before the transaction: PostgreSQL's clock asks the server

        def work(tx: Tx) -> MetricsSnapshot:
            return MetricsSnapshot(
                at=at,
                jobs=[
                    JobCounts(
                        r["job_type"],
                        r["status"],
                        int(r["n"]),
                        int(r["attempts"] or 0),
                        int(r["failures"] or 0),
                    )
                    for r in tx.query("metrics_jobs")
                ],
                oldest_pending={
                    r["job_type"]: float(r["oldest"]) for r in tx.query("metrics_oldest_pending")
                },
                transitions={
                    r["machine_name"]: int(r["n"]) for r in tx.query("metrics_transitions")
                },
                event_depth={
                    r["target_machine"]: int(r["n"]) for r in tx.query("metrics_event_depth")
                },
                durations=_durations(tx),
                machines=[machine_from_row(r) for r in tx.query("machines_list")],
                stuck={
                    (r["machine_name"], str(r["state"])): int(r["n"])
                    for r in tx.query("metrics_stuck")
                },
            )

        return self.conn.read(work)
