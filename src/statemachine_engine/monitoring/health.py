"""Machine health for the page: one classification per machine from its row, whether its
process lives, how it started recently, a lease it holds past its expiry and a `stuck`
report. Pure: the caller gathers the signals (monitoring/stream.py), this decides."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from statemachine_engine.database.records import MachineStatus
from statemachine_engine.database.rows import machine_of

#: Starts after a death within this many seconds make a crash loop (`statemachine up`
#: gives up after 5 crashes in 60 s by default, so a loop shows before it gives up).
CRASH_WINDOW = 60.0
CRASH_LOOP_STARTS = 3
#: How long a machine that came back after dying shows as restarting.
RESTART_WINDOW = 30.0

#: Kinds, most urgent first: when several apply, the first one is shown.
KINDS: tuple[str, ...] = (
    "crash_loop",
    "dead",
    "lease_overdue",
    "stuck",
    "restarting",
    "unknown",
    "stopped",
    "ok",
)
#: A `stuck` report that names no state: it holds until the machine next changes state.
ANY_STATE = "*"
PROBLEM_KINDS = frozenset({"crash_loop", "dead", "lease_overdue", "stuck"})


@dataclass(frozen=True)
class Health:
    """What the page shows for a machine: a kind from KINDS and one readable line."""

    kind: str
    detail: str = ""

    @property
    def problem(self) -> bool:
        return self.kind in PROBLEM_KINDS

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "detail": self.detail, "problem": self.problem}


@dataclass(frozen=True)
class Signals:
    """Everything classify() looks at for one machine."""

    status: str
    alive: bool | None
    pid: int | None = None
    restarts: tuple[float, ...] = ()
    overdue_job: str | None = None
    overdue_since: float | None = None
    stuck_state: str | None = None
    current_state: str | None = None


def classify(s: Signals, now: float) -> Health:
    """The most urgent health kind that applies to a machine with signals `s` at `now`.
    `restarts` are the times of starts that followed a run which ended without a clean stop."""
    found: dict[str, str] = {}
    recent = [t for t in s.restarts if now - t <= CRASH_WINDOW]
    if len(recent) >= CRASH_LOOP_STARTS:
        found["crash_loop"] = f"restarted {len(recent)} times in {CRASH_WINDOW:g} s"
    if s.status == "running" and s.alive is False:
        found["dead"] = f"process {s.pid} is gone" if s.pid else "no process"
    elif s.status not in ("running", "stopped"):
        found["dead"] = f"exited ({s.status})"
    if s.overdue_job is not None and s.status == "running":
        late = f" for {now - s.overdue_since:.0f} s" if s.overdue_since is not None else ""
        found["lease_overdue"] = f"holds job {s.overdue_job} past its lease{late}"
    stuck = s.stuck_state is not None and s.stuck_state in (ANY_STATE, s.current_state)
    if stuck and s.status == "running":
        found["stuck"] = f"stuck in {s.current_state}"
    if s.restarts and now - s.restarts[-1] <= RESTART_WINDOW and s.status == "running":
        found["restarting"] = f"restarted {now - s.restarts[-1]:.0f} s ago (pid {s.pid})"
    if s.status == "running" and s.alive is None:
        found["unknown"] = "runs on another host"
    if s.status == "stopped":
        found["stopped"] = "stopped"
    for kind in KINDS:
        if kind in found:
            return Health(kind, found[kind])
    return Health("ok")


@dataclass
class HealthLog:
    """Per machine, the starts that followed an unclean end (a crash, kill -9), from the
    realtime rows `machine_started` and `machine_stopped` in id order."""

    restarts: dict[str, deque[float]] = field(default_factory=dict)
    running: dict[str, bool] = field(default_factory=dict)
    stuck: dict[str, str] = field(default_factory=dict)

    def feed(self, machine: str | None, kind: str, payload: Any, at: float) -> None:
        """Take one realtime row into account."""
        if not machine:
            return
        if kind == "machine_started":
            if self.running.get(machine):
                starts = self.restarts.setdefault(machine, deque(maxlen=CRASH_LOOP_STARTS * 4))
                starts.append(at)
            self.running[machine] = True
            self.stuck.pop(machine, None)
        elif kind == "machine_stopped":
            status = payload.get("status") if isinstance(payload, dict) else None
            # a crash leaves the run open, so the next start counts as a restart
            self.running[machine] = status != "stopped"
        elif kind == "stuck":
            state = payload.get("state") if isinstance(payload, dict) else None
            self.stuck[machine] = state if isinstance(state, str) else ANY_STATE
        elif kind == "state_change" and isinstance(payload, dict):
            moved = payload.get("from_state") != payload.get("to_state")
            if moved:
                self.stuck.pop(machine, None)

    def of(self, machine: str) -> tuple[float, ...]:
        return tuple(self.restarts.get(machine, ()))


def overdue_by_machine(leases: list[tuple[str, str, float]]) -> dict[str, tuple[str, float]]:
    """(job id, lease expiry) of the first overdue lease per machine, from the store's
    `overdue_leases()` rows (owner `machine@host:pid`)."""
    out: dict[str, tuple[str, float]] = {}
    for job_id, owner, expires in leases:
        out.setdefault(machine_of(owner), (job_id, expires))
    return out


def machine_health(
    m: MachineStatus,
    alive: bool | None,
    log: HealthLog,
    overdue: dict[str, tuple[str, float]],
    now: float,
) -> Health:
    """The health of machine row `m`, whose process check gave `alive`."""
    job = overdue.get(m.machine_name)
    signals = Signals(
        status=m.status,
        alive=alive,
        pid=m.pid,
        restarts=log.of(m.machine_name),
        overdue_job=job[0] if job else None,
        overdue_since=job[1] if job else None,
        stuck_state=log.stuck.get(m.machine_name),
        current_state=m.current_state,
    )
    return classify(signals, now)
