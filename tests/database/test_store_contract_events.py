"""The Store contract for events across crashes (DESIGN §13.5), on every backend: a consumed
event is `handling` until the machine's next step ends it; a new run finds the ones a dead
run left and delivers them again, up to MAX_EVENT_DELIVERIES; a clean stop gives them back
uncounted."""

from __future__ import annotations

from statemachine_engine.clock import VirtualClock
from statemachine_engine.database.records import MAX_EVENT_DELIVERIES, Step
from statemachine_engine.database.store import Store


def register(store: Store, name: str = "worker") -> None:
    store.register_machine(
        name,
        "idle",
        pid=100,
        hostname="host",
        config_path=f"/etc/{name}.yaml",
        definition_name=name,
        definition_hash=f"hash-{name}",
        definition_text=f"name: {name}\n",
        at=1.0,
    )


def consume(store: Store, clock: VirtualClock, event_id: int, step: int = 1) -> None:
    """The step that takes the event: idle --go--> busy, the event now in hand."""
    store.commit_step(
        Step(
            "worker",
            at=clock.now(),
            step=step,
            from_state="idle",
            to_state="busy",
            event="go",
            consumed_event_id=event_id,
            consumed_event_status="handling",
        )
    )


def status_of(store: Store, event_id: int) -> tuple[str, int]:
    [event] = [e for e in store.list_events(limit=1000) if e.id == event_id]
    return event.status, event.deliveries


class TestEventsInHand:
    def test_consuming_step_keeps_the_event_in_hand_until_the_next_step(
        self, store: Store, clock: VirtualClock
    ) -> None:
        register(store)
        event = store.send_event("worker", "go")
        consume(store, clock, event.id)
        assert status_of(store, event.id) == ("handling", 1)
        assert store.next_event("worker") is None, "an event in hand is not delivered again"
        [record] = store.history(machine="worker")
        assert (record.event_id, record.event_delivery) == (event.id, 1)

        clock.advance(1)
        ended = Step(
            "worker",
            at=clock.now(),
            step=2,
            from_state="busy",
            to_state="idle",
            event="done",
            finished_event_id=event.id,
        )
        assert store.commit_step(ended) is True
        [stored] = store.list_events(target="worker")
        assert (stored.status, stored.deliveries, stored.processed_at) == (
            "processed",
            1,
            clock.now(),
        )

    def test_a_step_without_a_state_change_can_end_the_handling(
        self, store: Store, clock: VirtualClock
    ) -> None:
        register(store)
        event = store.send_event("worker", "go")
        consume(store, clock, event.id)
        park = Step("worker", clock.now(), 1, "busy", None, None, finished_event_id=event.id)
        store.commit_steps([park])
        assert status_of(store, event.id) == ("processed", 1)
        assert len(store.history(machine="worker")) == 1

    def test_recovery_delivers_it_again_first_in_line_then_fails_it(
        self, store: Store, clock: VirtualClock
    ) -> None:
        register(store)
        event = store.send_event("worker", "go", {"n": 1})
        later = store.send_event("worker", "go", {"n": 2})
        other = store.send_event("other", "go")
        why = "machine worker (pid 100 on host) died while handling it"
        for delivery in range(1, MAX_EVENT_DELIVERIES):
            consume(store, clock, event.id, step=delivery)
            assert store.recover_events("other", why) == []
            [recovered] = store.recover_events("worker", why)
            assert (recovered.id, recovered.status, recovered.deliveries) == (
                event.id,
                "pending",
                delivery,
            )
            assert recovered.error_message is not None and why in recovered.error_message
            assert f"({delivery + 1} of {MAX_EVENT_DELIVERIES})" in recovered.error_message
            assert store.next_event("worker") == recovered, "before the later event"
        assert store.history(machine="worker")[0].event_delivery == MAX_EVENT_DELIVERIES - 1

        consume(store, clock, event.id, step=MAX_EVENT_DELIVERIES)
        assert store.history(machine="worker")[0].event_delivery == MAX_EVENT_DELIVERIES
        [given_up] = store.recover_events("worker", why)
        assert (given_up.status, given_up.deliveries) == ("failed", MAX_EVENT_DELIVERIES)
        assert given_up.error_message is not None
        assert given_up.error_message.startswith(f"interrupted {MAX_EVENT_DELIVERIES} times")
        assert given_up.processed_at == clock.now()
        following = store.next_event("worker")
        assert following is not None and following.id == later.id
        assert status_of(store, other.id) == ("pending", 0)
        assert store.recover_events("worker", why) == [], "nothing left in hand"

        notices = [r.payload for r in store.realtime_since() if r.kind == "event_interrupted"]
        assert [(n["event_id"], n["status"], n["deliveries"]) for n in notices] == [
            (event.id, "pending", d) for d in range(1, MAX_EVENT_DELIVERIES)
        ] + [(event.id, "failed", MAX_EVENT_DELIVERIES)]
        assert all(n["machine_name"] == "worker" and n["event"] == "go" for n in notices)

    def test_a_clean_stop_releases_it_without_counting(
        self, store: Store, clock: VirtualClock
    ) -> None:
        register(store)
        event = store.send_event("worker", "go")
        consume(store, clock, event.id)
        assert store.release_event(event.id) is True
        assert status_of(store, event.id) == ("pending", 0)
        assert store.release_event(event.id) is False, "only an event in hand is released"
        assert store.next_event("worker") is not None
        assert store.recover_events("worker", "died") == []

    def test_ending_a_handling_twice_or_after_recovery_changes_nothing(
        self, store: Store, clock: VirtualClock
    ) -> None:
        register(store)
        event = store.send_event("worker", "go")
        consume(store, clock, event.id)
        store.recover_events("worker", "died")
        late = Step("worker", clock.now(), 2, "busy", None, None, finished_event_id=event.id)
        store.commit_steps([late])
        assert status_of(store, event.id) == ("pending", 1)

    def test_prune_keeps_events_in_hand_and_failed_ones(
        self, store: Store, clock: VirtualClock
    ) -> None:
        register(store)
        failed = store.send_event("worker", "go")
        for delivery in range(1, MAX_EVENT_DELIVERIES + 1):
            consume(store, clock, failed.id, step=delivery)
            store.recover_events("worker", "died")
        in_hand = store.send_event("worker", "go")
        consume(store, clock, in_hand.id, step=10)
        done = store.send_event("worker", "go")
        store.mark_event(done.id, "processed")
        clock.advance(3600)
        assert store.prune(clock.now() - 60)["machine_events"] == 1
        assert {e.id: e.status for e in store.list_events(target="worker")} == {
            in_hand.id: "handling",
            failed.id: "failed",
        }
