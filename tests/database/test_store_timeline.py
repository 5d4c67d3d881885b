"""A machine's timeline (database/history.py) on every backend: every kind of item, newest
first, and paging that returns every item exactly once, in order, however the sources tie."""

from __future__ import annotations

import pytest

from statemachine_engine.clock import VirtualClock
from statemachine_engine.database.history import CursorError, TimelineKey
from statemachine_engine.database.records import Claim, JobAck, OutgoingEvent, Step
from statemachine_engine.database.store import Store
from statemachine_engine.errors import StoreError


def register(store: Store, name: str, at: float) -> None:
    store.register_machine(
        name,
        "idle",
        pid=100,
        hostname="host",
        config_path=f"/etc/{name}.yaml",
        definition_name=name,
        definition_hash=f"hash-{name}",
        definition_text=f"name: {name}\n",
        at=at,
    )


def one_job_round(store: Store, clock: VirtualClock, n: int) -> None:
    """An event arrives, the worker takes a job, sends an event, completes the job; the
    claim, the step and the ack share one time (ties broken by source and id)."""
    event = store.send_event("worker", "go", source="boss")
    clock.advance(1)
    store.add_job("task", {"n": n}, job_id=f"job-{n}")
    committed = store.commit_steps(
        [
            Step(
                "worker",
                at=clock.now(),
                step=2 * n,
                from_state="idle",
                to_state="busy",
                event="go",
                consumed_event_id=event.id,
            )
        ],
        claim=Claim(job_type="task", owner="worker@host:100", lease_seconds=30),
    )
    assert committed.job is not None
    store.commit_step(
        Step(
            "worker",
            at=clock.now(),
            step=2 * n + 1,
            from_state="busy",
            to_state="idle",
            event="done",
            job_id=f"job-{n}",
            job_ack=JobAck(f"job-{n}", "worker@host:100", "completed"),
            outbox=[OutgoingEvent("boss", "finished", job_id=f"job-{n}")],
            realtime=[("error", {"machine_name": "worker", "state": "busy", "error": "late"})],
        )
    )
    clock.advance(1)


@pytest.fixture
def history(store: Store, clock: VirtualClock) -> Store:
    register(store, "worker", clock.now())
    register(store, "boss", clock.now())
    clock.advance(1)
    for n in range(7):
        one_job_round(store, clock, n)
    store.machine_stopped("worker", "stopped", clock.now())
    return store


def every_page(store: Store, limit: int) -> list[list[dict[str, object]]]:
    pages, before = [], None
    while True:
        page = store.machine_timeline("worker", before=before, limit=limit)
        pages.append(page.items)
        if page.before is None:
            return pages
        before = page.before


def test_the_timeline_holds_every_kind_newest_first(history: Store) -> None:
    page = history.machine_timeline("worker", limit=500)
    assert page.before is None
    kinds = [item["kind"] for item in page.items]
    assert kinds[0] == "machine" and page.items[0]["what"] == "stopped"
    assert kinds[-1] == "machine" and page.items[-1]["what"] == "started"
    assert kinds.count("transition") == 14
    assert kinds.count("event_received") == 7
    assert kinds.count("event_sent") == 7
    assert kinds.count("error") == 7
    jobs = [(i["job_id"], i["status"]) for i in page.items if i["kind"] == "job"]
    assert jobs[:2] == [("job-6", "completed"), ("job-6", "processing")]
    assert len(jobs) == 14
    keys = [TimelineKey.decode(str(i["key"])) for i in page.items]
    assert keys == sorted(keys, reverse=True) and len(set(keys)) == len(keys)
    [sent] = [i for i in page.items if i["kind"] == "event_sent"][:1]
    assert (sent["target"], sent["event"], sent["job_id"]) == ("boss", "finished", "job-6")
    [got] = [i for i in page.items if i["kind"] == "event_received"][:1]
    assert (got["source"], got["event"], got["status"]) == ("boss", "go", "processed")
    [moved] = [i for i in page.items if i["kind"] == "transition"][:1]
    assert (moved["from_state"], moved["to_state"], moved["event"]) == ("busy", "idle", "done")
    assert history.machine_timeline("boss", limit=500).items[0]["kind"] == "event_received"


@pytest.mark.parametrize("limit", [1, 2, 3, 7, 50])
def test_pages_return_every_item_once_in_order(history: Store, limit: int) -> None:
    whole = history.machine_timeline("worker", limit=500).items
    pages = every_page(history, limit)
    assert all(len(p) == limit for p in pages[:-1]) and 1 <= len(pages[-1]) <= limit
    assert [i["key"] for p in pages for i in p] == [i["key"] for i in whole]


def test_newer_rows_do_not_shift_an_older_page(history: Store, clock: VirtualClock) -> None:
    first = history.machine_timeline("worker", limit=10)
    clock.advance(1)
    for n in range(7, 9):
        one_job_round(history, clock, n)
    second = history.machine_timeline("worker", before=first.before, limit=10)
    whole = history.machine_timeline("worker", limit=500).items
    keys = [i["key"] for i in whole]
    start = keys.index(first.items[0]["key"])
    assert [i["key"] for i in first.items + second.items] == keys[start : start + 20]


def test_unknown_machine_and_bad_input(history: Store) -> None:
    assert history.machine_timeline("nobody").items == []
    with pytest.raises(CursorError, match="cursor 'nope' is not time:source:id"):
        history.machine_timeline("worker", before="nope")
    with pytest.raises(CursorError):
        history.machine_timeline("worker", before="1.5:9:3")
    with pytest.raises(StoreError, match="limit 0 is not between 1 and 500"):
        history.machine_timeline("worker", limit=0)
