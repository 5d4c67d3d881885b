"""`GET /metrics`: Prometheus exposition computed from the database at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from statemachine_engine.database import MachineStatus
from statemachine_engine.database.liveness import process_alive
from statemachine_engine.database.metrics import STATE_SECONDS_BUCKETS, MetricsSnapshot

PREFIX = "statemachine"
CONTENT_TYPE = CONTENT_TYPE_LATEST


def machine_up(m: MachineStatus) -> bool:
    """Running, and its process is not known to be gone (on another host it cannot be seen)."""
    return m.status == "running" and process_alive(m.pid, m.pid_start, m.hostname) is not False


class SnapshotCollector(Collector):
    """The metric families of one snapshot of the store."""

    def __init__(self, snapshot: MetricsSnapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        yield from self._jobs()
        yield from self._machines()
        yield self._durations()
        yield self._stuck()

    def _jobs(self) -> Iterator[Metric]:
        s = self.snapshot
        jobs = GaugeMetricFamily(
            f"{PREFIX}_jobs", "Jobs in the queue by type and status.", labels=["job_type", "status"]
        )
        attempts = CounterMetricFamily(
            f"{PREFIX}_job_attempts", "Attempts started by jobs of a type.", labels=["job_type"]
        )
        failures = CounterMetricFamily(
            f"{PREFIX}_job_failures", "Failed attempts of jobs of a type.", labels=["job_type"]
        )
        started: dict[str, int] = {}
        failed: dict[str, int] = {}
        for c in s.jobs:
            jobs.add_metric([c.job_type, c.status], c.jobs)
            started[c.job_type] = started.get(c.job_type, 0) + c.attempts
            failed[c.job_type] = failed.get(c.job_type, 0) + c.failures
        for job_type in sorted(started):
            attempts.add_metric([job_type], started[job_type])
            failures.add_metric([job_type], failed[job_type])
        oldest = GaugeMetricFamily(
            f"{PREFIX}_oldest_pending_job_age_seconds",
            "Age of the oldest pending job of a type.",
            labels=["job_type"],
        )
        for job_type, created in sorted(s.oldest_pending.items()):
            oldest.add_metric([job_type], max(0.0, s.at - created))
        yield from (jobs, attempts, failures, oldest)

    def _machines(self) -> Iterator[Metric]:
        s = self.snapshot
        up = GaugeMetricFamily(
            f"{PREFIX}_machine_up", "1 while the machine runs, 0 once stopped.", labels=["machine"]
        )
        for m in s.machines:
            up.add_metric([m.machine_name], 1.0 if machine_up(m) else 0.0)
        transitions = CounterMetricFamily(
            f"{PREFIX}_transitions", "State changes in the retained history.", labels=["machine"]
        )
        for name, n in sorted(s.transitions.items()):
            transitions.add_metric([name], n)
        depth = GaugeMetricFamily(
            f"{PREFIX}_event_queue_depth", "Events waiting for a machine.", labels=["machine"]
        )
        for m in s.machines:
            depth.add_metric([m.machine_name], s.event_depth.get(m.machine_name, 0))
        for name in sorted(set(s.event_depth) - {m.machine_name for m in s.machines}):
            depth.add_metric([name], s.event_depth[name])
        yield from (up, transitions, depth)

    def _durations(self) -> Metric:
        family = HistogramMetricFamily(
            f"{PREFIX}_state_duration_seconds",
            "Completed stays in a state, from the retained transition history.",
            labels=["machine", "state"],
        )
        for d in self.snapshot.durations:
            buckets = [
                (_bound(b), float(n)) for b, n in zip(STATE_SECONDS_BUCKETS, d.buckets, strict=True)
            ]
            buckets.append(("+Inf", float(d.count)))
            family.add_metric([d.machine_name, d.state], buckets, d.total_seconds)
        return family

    def _stuck(self) -> Metric:
        family = CounterMetricFamily(
            f"{PREFIX}_stuck",
            "Dwell alerts: a machine stayed in a state longer than its max_dwell.",
            labels=["machine", "state"],
        )
        for (machine, state), n in sorted(self.snapshot.stuck.items()):
            family.add_metric([machine, state], n)
        return family


def _bound(value: float) -> str:
    return repr(float(value))


def exposition(snapshot: MetricsSnapshot) -> bytes:
    """The text format of `snapshot`, as a Prometheus server scrapes it."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(snapshot))
    return generate_latest(registry)
