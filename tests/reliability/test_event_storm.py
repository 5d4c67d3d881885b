"""RELIABILITY-TESTS #23, an event storm: three machines in a ring each send 3,334 numbered
events to the next as fast as they can while handling the ones coming in (10,002 in all).
Pass: every event arrives once, in the order its sender sent it; no socket-buffer error
surfaces; the machines' memory stays small."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from statemachine_engine.database.sqlite import SQLiteStore

PER_SENDER = 3334
RING = {"a": "b", "b": "c", "c": "a"}
GOT_RE = re.compile(r"got (\w) (\d+)$")
SOCKET_ERRORS = ("No buffer space", "ENOBUFS", "EAGAIN", "Resource temporarily unavailable")


def machine(name: str, target: str) -> str:
    todo = ", ".join(str(n) for n in range(1, PER_SENDER + 1))
    return textwrap.dedent(
        f"""
        name: storm {name}
        initial_state: sending
        options: {{max_instant_steps: 100000}}
        context:
          todo: [{todo}]
        states: [sending, emitting, got, idle]
        events: [popped, drained, sent, ping, logged]
        transitions:
          - from: sending
            to: emitting
            event: popped
            actions:
              - {{type: pop_from_list, list_key: todo, store_as: n, success: popped,
                  empty: drained}}
          - {{from: sending, to: idle, event: drained}}
          - from: emitting
            to: sending
            event: sent
            actions:
              - type: send_event
                target_machine: {target}
                event_type: ping
                payload: {{n: "{{n}}", sender: {name}}}
                success: sent
          - {{from: [sending, idle], to: got, event: ping}}
          - from: got
            to: sending
            event: logged
            actions:
              - type: log
                message: "got {{event_data.payload.sender}} {{event_data.payload.n}}"
                success: logged
        """
    ).lstrip()


def received(text: str) -> list[tuple[str, int]]:
    found = []
    for line in text.splitlines():
        match = GOT_RE.search(line)
        if match:
            found.append((match.group(1), int(match.group(2))))
    return found


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


@pytest.mark.timeout(150)
def test_ten_thousand_events_between_three_machines(
    kit: Any, procs: Any, db: SQLiteStore, db_path: Path
) -> None:
    machines = {
        name: procs.machine(procs.config(name, machine(name, target)), name)
        for name, target in RING.items()
    }

    def consumed() -> int:
        rows = kit.sql(db_path, "SELECT COUNT(*) FROM machine_events WHERE status != 'pending'")
        return int(rows[0][0])

    total = PER_SENDER * len(RING)
    kit.wait_until(lambda: consumed() >= total, 120, f"all {total} events handled")
    for name in RING:
        kit.wait_until(
            lambda name=name: len(received(procs.log(machines[name]))) >= PER_SENDER,
            20,
            f"{name} logged every event it handled",
        )
    rows = kit.sql(
        db_path, "SELECT target_machine, status, COUNT(*) FROM machine_events GROUP BY 1, 2"
    )
    assert sorted(rows) == sorted((t, "processed", PER_SENDER) for t in RING.values()), rows
    for name, proc in machines.items():
        log = procs.log(proc)
        sender = next(s for s, t in RING.items() if t == name)
        got = received(log)
        assert got == [(sender, n) for n in range(1, PER_SENDER + 1)], (
            f"{name}: lost, duplicated or out of order: first differences"
            f" {[g for g, e in zip(got, range(1, PER_SENDER + 1), strict=False) if g[1] != e][:3]}"
        )
        assert not [e for e in SOCKET_ERRORS if e in log], f"{name} surfaced a socket error"
        assert "loop_detected" not in log
        assert proc.poll() is None, f"{name} died"
        assert peak_rss_mib(proc.pid) < 150, f"{name} grew to {peak_rss_mib(proc.pid):.0f} MiB"
