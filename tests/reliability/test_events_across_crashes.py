"""Events across crashes (DESIGN §13.5, issue 13 item 5) and values a step cannot store
(item 8) with real processes: the event whose handling a kill -9 cut short is handed to the
next run (on SQLite and PostgreSQL), an event that kills its machine every time is failed
after 3 deliveries, a SIGTERM gives it back uncounted, and a job whose `send_event` payload
is over 1 MiB fails its attempts with that reason while the worker lives on."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from statemachine_engine.database.records import MAX_EVENT_DELIVERIES
from statemachine_engine.database.sqlite import SQLiteStore
from statemachine_engine.database.store import MAX_PAYLOAD_BYTES, Store

HANDLER = """
name: handler
initial_state: idle
states: [idle, handling]
events: [tick, handled, error]
transitions:
  - {from: idle, to: handling, event: tick}
  - from: handling
    to: idle
    event: handled
    actions:
      - type: bash
        params:
          command: >-
            echo {event_data.payload.n}:{event_data.delivery} >> got;
            %s
          success: handled
  - {from: handling, to: idle, event: error}
"""
STALL_ONCE = (
    "if [ {event_data.payload.n} = 5 ] && [ ! -e stalled ]; then touch stalled; sleep 30; fi"
)
POISON = "if [ {event_data.payload.n} = 2 ]; then kill -9 $PPID; sleep 5; fi"
STALL_ALWAYS = "if [ {event_data.payload.n} = 2 ]; then touch stalled; sleep 30; fi"


@pytest.fixture
def pg_url(tmp_path: Path) -> Iterator[str]:
    from statemachine_engine.database.postgres import testing as pg_testing

    schema = "e_" + hashlib.md5(str(tmp_path).encode(), usedforsecurity=False).hexdigest()[:20]
    url = pg_testing.with_schema(pg_testing.check_server(), schema)
    yield url
    pg_testing.drop_schema(url)


def got(workdir: Path) -> list[str]:
    path = workdir / "got"
    return path.read_text().split() if path.exists() else []


def kill_9_mid_handling_then_restart(
    procs: Any, store: Store, workdir: Path, kit: Any
) -> tuple[list[int], int]:
    """Ten events to the handler; kill -9 its process group while it handles #5; restart it
    and wait until every event is processed. Returns the event ids and the killed pid."""
    config = procs.config("handler", HANDLER % STALL_ONCE)
    ids = [store.send_event("handler", "tick", {"n": n}).id for n in range(1, 11)]
    first = procs.machine(config, "handler")
    kit.wait_until(lambda: (workdir / "stalled").exists(), 30, "event #5 being handled")
    [in_hand] = store.list_events(target="handler", status="handling")
    assert in_hand.id == ids[4], "the event being handled is in hand, not processed"
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    second = procs.machine(config, "handler")

    def all_processed() -> bool:
        events = store.list_events(target="handler")
        return len(events) == 10 and {e.status for e in events} == {"processed"}

    kit.wait_until(all_processed, 30, "every event processed")
    assert second.poll() is None
    return ids, first.pid


def check_redelivered(store: Store, workdir: Path, ids: list[int], killed: int) -> None:
    expected = [f"{n}:1" for n in range(1, 6)] + ["5:2"] + [f"{n}:1" for n in range(6, 11)]
    assert got(workdir) == expected, "in order; #5 (killed) handled again as delivery 2"
    events = {e.id: e for e in store.list_events(target="handler")}
    assert {i: e.deliveries for i, e in events.items()} == {i: 2 if i == ids[4] else 1 for i in ids}
    message = events[ids[4]].error_message or ""
    assert f"machine handler (pid {killed} on " in message and "died" in message, message
    consumed = [
        (r.event_id, r.event_delivery)
        for r in reversed(store.history(machine="handler", limit=100))
        if r.event == "tick"
    ]
    assert consumed == [(i, 1) for i in ids[:5]] + [(ids[4], 2)] + [(i, 1) for i in ids[5:]]
    notices = [r.payload for r in store.realtime_since(0, 5000) if r.kind == "event_interrupted"]
    assert [(n["event_id"], n["status"]) for n in notices] == [(ids[4], "pending")]


@pytest.mark.timeout(90)
def test_kill_9_mid_handling_hands_the_event_to_the_next_run(
    procs: Any, db: SQLiteStore, workdir: Path, kit: Any
) -> None:
    ids, killed = kill_9_mid_handling_then_restart(procs, db, workdir, kit)
    check_redelivered(db, workdir, ids, killed)
    listed = procs.cli("list-events", "--target", "handler", "--limit", "20")
    assert listed.returncode == 0, listed.stderr
    [row] = [line for line in listed.stdout.splitlines() if f"pid {killed}" in line]
    assert row.split()[:5] == [str(ids[4]), "handler", "tick", "processed", "2"]
    history = procs.cli("history", "--machine", "handler", "--limit", "100").stdout
    assert f"tick #{ids[4]}, delivery 2" in history


@pytest.mark.timeout(120)
def test_kill_9_mid_handling_on_postgresql_too(
    procs: Any, pg_url: str, workdir: Path, kit: Any
) -> None:
    from statemachine_engine.database.postgres import PostgresStore

    store = PostgresStore(pg_url)
    try:
        procs.db_url = pg_url
        ids, killed = kill_9_mid_handling_then_restart(procs, store, workdir, kit)
        check_redelivered(store, workdir, ids, killed)
    finally:
        store.close()


@pytest.mark.timeout(90)
def test_an_event_that_kills_its_machine_every_time_fails_after_the_limit(
    procs: Any, db: SQLiteStore, workdir: Path, kit: Any
) -> None:
    """The handling of event #2 SIGKILLs its own machine; a supervisor loop restarts it.
    Each run takes #2 again, counting deliveries; after the limit it is `failed` with the
    reason and the events behind it are handled."""
    config = procs.config("handler", HANDLER % POISON)
    ids = [db.send_event("handler", "tick", {"n": n}).id for n in range(1, 5)]
    deaths = 0
    deadline = time.monotonic() + 60
    machine = procs.machine(config, "handler")
    while len(got(workdir)) < 3 + MAX_EVENT_DELIVERIES:
        assert time.monotonic() < deadline, f"not done in time: {got(workdir)}"
        if machine.poll() is not None:
            assert machine.returncode == -signal.SIGKILL, procs.log(machine)
            deaths += 1
            machine = procs.machine(config, "handler")
        time.sleep(0.02)
    kit.wait_until(lambda: db.list_events(target="handler", status="processed").__len__() == 3, 20)
    assert deaths == MAX_EVENT_DELIVERIES
    assert got(workdir) == ["1:1", "2:1", "2:2", "2:3", "3:1", "4:1"]
    poison = next(e for e in db.list_events(target="handler") if e.id == ids[1])
    assert (poison.status, poison.deliveries) == ("failed", MAX_EVENT_DELIVERIES)
    assert (poison.error_message or "").startswith(f"interrupted {MAX_EVENT_DELIVERIES} times")
    listed = procs.cli("list-events", "--status", "failed", "--json")
    assert [e["id"] for e in json.loads(listed.stdout)] == [ids[1]]
    assert "not delivered again" in procs.log(machine)
    assert machine.poll() is None


@pytest.mark.timeout(60)
def test_sigterm_mid_handling_gives_the_event_back_uncounted(
    procs: Any, db: SQLiteStore, workdir: Path, kit: Any
) -> None:
    config = procs.config("handler", HANDLER % STALL_ALWAYS)
    ids = [db.send_event("handler", "tick", {"n": n}).id for n in range(1, 3)]
    first = procs.machine(config, "handler")
    kit.wait_until(lambda: (workdir / "stalled").exists(), 30, "event #2 being handled")
    os.killpg(first.pid, signal.SIGTERM)
    assert first.wait(timeout=15) == 0
    second_event = next(e for e in db.list_events(target="handler") if e.id == ids[1])
    assert (second_event.status, second_event.deliveries) == ("pending", 0)
    assert second_event.error_message is None
    assert "released event" in procs.log(first)
    (workdir / "stalled").unlink()
    procs.machine(config, "handler")
    kit.wait_until(lambda: (workdir / "stalled").exists(), 30, "event #2 handled again")
    assert got(workdir) == ["1:1", "2:1", "2:1"], "the same delivery: a stop is not a crash"
    assert [r for r in db.realtime_since(0, 5000) if r.kind == "event_interrupted"] == []


BIG_SENDER = """
name: sender
initial_state: waiting
states: [waiting, processing]
events: [new_job, no_jobs, job_done, error]
transitions:
  - from: waiting
    to: processing
    event: new_job
    actions:
      - {type: check_database_queue, job_type: task}
  - {from: waiting, to: waiting, event: no_jobs}
  - from: processing
    to: waiting
    event: job_done
    actions:
      - {type: send_event, target: sink, event_type: got, payload: ["{data.x}", "{data.x}"]}
      - {type: log, message: "sent {job_id}", success: job_done}
  - {from: processing, to: waiting, event: error}
"""


@pytest.mark.timeout(60)
def test_a_send_event_payload_over_1_mib_fails_the_job_not_the_worker(
    procs: Any, db: SQLiteStore, kit: Any
) -> None:
    """Issue 13 item 8: the worker used to exit 1 at commit on every attempt, the job's
    errors saying only "died while running the job"."""
    half = "x" * (MAX_PAYLOAD_BYTES // 2 + 10)
    db.add_job("task", {"x": half}, job_id="big", max_attempts=3, priority=1)
    db.add_job("task", {"x": "small"}, job_id="small")
    config = procs.config("sender", BIG_SENDER)
    worker = procs.machine(config, "sender")

    def settled() -> bool:
        big, small = db.get_job("big"), db.get_job("small")
        return (
            big is not None
            and small is not None
            and (big.status, small.status)
            == (
                "failed",
                "completed",
            )
        )

    kit.wait_until(settled, 30, "big failed, small completed")
    big = db.get_job("big")
    assert big is not None and big.attempts == 3 and len(big.errors) == 3
    for error in big.errors:
        assert "payload of event 'got' for 'sink'" in error, error
        assert f"more than the limit of {MAX_PAYLOAD_BYTES} bytes" in error
    assert worker.poll() is None, "the worker lives on"
    assert [e.payload for e in db.list_events(target="sink")] == [["small", "small"]]
    assert "died" not in procs.log(worker)
