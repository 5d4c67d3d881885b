"""Machine health: the classification, the run log fed from realtime rows, and liveness of
a process killed but not reaped."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from statemachine_engine.database.liveness import (
    is_zombie,
    process_alive,
    process_start,
    this_host,
)
from statemachine_engine.database.records import MachineStatus
from statemachine_engine.database.sqlite import SQLiteStore
from statemachine_engine.monitoring.db import Db
from statemachine_engine.monitoring.health import (
    CRASH_LOOP_STARTS,
    CRASH_WINDOW,
    RESTART_WINDOW,
    Health,
    HealthLog,
    Signals,
    classify,
    machine_health,
    overdue_by_machine,
)
from statemachine_engine.monitoring.stream import Client, Hub

from .conftest import register

NOW = 10_000.0


def test_a_running_machine_with_a_live_process_is_ok() -> None:
    assert classify(Signals("running", True, pid=5), NOW) == Health("ok")


def test_a_dead_process_under_a_running_row_is_dead() -> None:
    health = classify(Signals("running", False, pid=4321), NOW)
    assert (health.kind, health.detail, health.problem) == ("dead", "process 4321 is gone", True)


def test_a_crash_row_is_dead_and_a_clean_stop_is_not_a_problem() -> None:
    assert classify(Signals("crashed", False), NOW).kind == "dead"
    stopped = classify(Signals("stopped", False), NOW)
    assert (stopped.kind, stopped.problem) == ("stopped", False)


def test_a_machine_back_after_a_death_is_restarting_for_a_while() -> None:
    back = Signals("running", True, pid=7, restarts=(NOW - 2,))
    assert classify(back, NOW).kind == "restarting"
    later = Signals("running", True, pid=7, restarts=(NOW - RESTART_WINDOW - 1,))
    assert classify(later, NOW).kind == "ok"


def test_several_restarts_in_the_window_are_a_crash_loop_even_while_dead() -> None:
    starts = tuple(NOW - i for i in range(CRASH_LOOP_STARTS))
    assert classify(Signals("running", True, restarts=starts), NOW).kind == "crash_loop"
    assert classify(Signals("running", False, restarts=starts), NOW).kind == "crash_loop"
    fewer = starts[: CRASH_LOOP_STARTS - 1]
    assert classify(Signals("running", True, restarts=fewer), NOW).kind == "restarting"
    old = tuple(NOW - CRASH_WINDOW - 1 - i for i in range(CRASH_LOOP_STARTS))
    assert classify(Signals("running", True, restarts=old), NOW).kind == "ok"


def test_a_lease_held_past_its_expiry_shows_with_the_job() -> None:
    held = Signals("running", True, overdue_job="j1", overdue_since=NOW - 12)
    health = classify(held, NOW)
    assert (health.kind, health.detail) == ("lease_overdue", "holds job j1 past its lease for 12 s")
    dead = Signals("running", False, overdue_job="j1", overdue_since=NOW - 12)
    assert classify(dead, NOW).kind == "dead"  # the death says more than the lease


def test_stuck_holds_while_the_machine_stays_in_the_reported_state() -> None:
    assert classify(Signals("running", True, stuck_state="a", current_state="a"), NOW).kind == (
        "stuck"
    )
    assert classify(Signals("running", True, stuck_state="a", current_state="b"), NOW).kind == "ok"


def test_a_process_on_another_host_is_unknown_not_dead() -> None:
    assert classify(Signals("running", None), NOW).kind == "unknown"


def test_the_log_counts_starts_after_unclean_ends_only() -> None:
    log = HealthLog()
    log.feed("m", "machine_started", {"pid": 1}, 1.0)
    assert log.of("m") == ()
    log.feed("m", "machine_stopped", {"status": "stopped"}, 2.0)
    log.feed("m", "machine_started", {"pid": 2}, 3.0)
    assert log.of("m") == ()  # a clean stop, then a start: not a restart
    log.feed("m", "machine_started", {"pid": 3}, 4.0)  # no stop before: it died (kill -9)
    log.feed("m", "machine_stopped", {"status": "crashed"}, 5.0)
    log.feed("m", "machine_started", {"pid": 4}, 6.0)
    assert log.of("m") == (4.0, 6.0)
    assert log.of("other") == ()


def test_the_log_keeps_a_stuck_report_until_the_state_changes() -> None:
    log = HealthLog()
    log.feed("m", "stuck", {"state": "busy", "seconds": 30}, 1.0)
    assert log.stuck == {"m": "busy"}
    log.feed("m", "state_change", {"from_state": "busy", "to_state": "busy"}, 2.0)
    assert log.stuck == {"m": "busy"}
    log.feed("m", "state_change", {"from_state": "busy", "to_state": "idle"}, 3.0)
    assert log.stuck == {}
    log.feed("m", "stuck", {}, 4.0)  # no state named: stuck where it is
    row = MachineStatus("m", "idle", "running", 3, 4.0, pid=9)
    assert machine_health(row, True, log, {}, 5.0).kind == "stuck"


def test_overdue_leases_map_to_the_machine_in_the_owner() -> None:
    rows = [("j1", "w-1@host:12", 5.0), ("j2", "w-1@host:12", 6.0), ("j3", "w-2", 7.0)]
    assert overdue_by_machine(rows) == {"w-1": ("j1", 5.0), "w-2": ("j3", 7.0)}


def test_a_killed_child_not_yet_reaped_is_not_alive() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        start = process_start(child.pid)
        assert process_alive(child.pid, start) is True
        child.kill()  # SIGKILL; nobody calls wait(): the child stays a zombie
        deadline = time.monotonic() + 10
        while not is_zombie(child.pid):
            assert time.monotonic() < deadline, "the killed child never became a zombie"
            time.sleep(0.01)
        assert process_alive(child.pid, start) is False
        assert process_alive(child.pid) is False
    finally:
        child.wait()


def test_a_pid_with_another_start_time_is_not_the_recorded_process() -> None:
    import os

    start = process_start(os.getpid())
    assert start is not None
    assert process_alive(os.getpid(), start) is True
    assert process_alive(os.getpid(), start + 1) is False


async def test_liveness_changes_reach_clients_from_the_first_check(tmp_path: Path) -> None:
    """The page learns of a death that happens before the server's first liveness check
    that saw the machine (seen once: the killed machine was shown alive for good)."""
    url = f"sqlite:///{tmp_path / 'sm.db'}"
    SQLiteStore(str(tmp_path / "sm.db")).close()
    db = Db(url)
    hub = Hub(db, doorbell_name=None, fallback_interval=3600)
    client = Client()
    hub.clients.add(client)
    try:
        await hub._check_liveness()  # no machine yet
        child = subprocess.Popen([sys.executable, "-c", "pass"])
        child.wait()  # gone: its pid answers no more
        await db.call(lambda s: register(s, "gone-1", pid=child.pid, hostname=this_host()))
        await db.call(lambda s: register(s, "mine", pid=os.getpid(), hostname=this_host()))
        await hub._check_liveness()
        pushed = {
            m["machine_name"]: m["health"]["kind"]
            for msg in drain(client)
            if msg["type"] == "machines"
            for m in msg["machines"]
        }
        assert pushed == {"gone-1": "dead", "mine": "ok"}
        await hub._check_liveness()  # nothing changed since: nothing pushed
        assert drain(client) == []
    finally:
        db.close()


def drain(client: Client) -> list[dict[str, Any]]:
    found = []
    while not client.queue.empty():
        found.append(client.queue.get_nowait())
    return found
