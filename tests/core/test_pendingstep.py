"""PendingStep: a step's recorded intentions, and whether there are any."""

from __future__ import annotations

import pytest

from statemachine_engine.core.pendingstep import PendingStep
from statemachine_engine.database.records import JobAck, OutgoingEvent


def test_a_fresh_step_is_empty() -> None:
    assert PendingStep().empty


@pytest.mark.parametrize(
    "pending",
    [
        PendingStep(job_ack=JobAck("j1", "w@h:1", "completed")),
        PendingStep(outbox=[OutgoingEvent("other", "go")]),
        PendingStep(realtime=[("activity", {"message": "hi"})]),
    ],
)
def test_any_intention_makes_it_not_empty(pending: PendingStep) -> None:
    assert not pending.empty


def test_steps_do_not_share_their_lists() -> None:
    first, second = PendingStep(), PendingStep()
    first.outbox.append(OutgoingEvent("other", "go"))
    assert second.outbox == []
