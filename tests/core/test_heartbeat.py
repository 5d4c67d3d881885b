"""The loop stall watch: a blocked loop is reported with what ran, also when the stall
starts as a parked machine wakes up (real time: a stall is about the real loop)."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from statemachine_engine.core.heartbeat import STALL_TICK, StallWatch


def stalls(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "event loop blocked" in r.getMessage()]


async def test_a_blocked_loop_is_reported_with_what_held_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[tuple[float, float]] = []

    def where(since: float, until: float) -> str:
        seen.append((since, until))
        return "(state s, action A)"

    watch = StallWatch("m", where)
    task = asyncio.create_task(watch.run())
    try:
        with caplog.at_level(logging.WARNING):
            await asyncio.sleep(0.05)
            blocked = time.monotonic()
            time.sleep(1.6)  # a blocking call on the loop
            await asyncio.sleep(STALL_TICK + 0.1)
    finally:
        task.cancel()
    [message] = stalls(caplog)
    assert message.startswith("[m] event loop blocked for ")
    assert message.endswith("(state s, action A)")
    assert 1.0 <= float(message.split("for ")[1].split(" s")[0]) < 5
    [(since, until)] = seen
    assert since <= blocked < until


async def test_a_stall_starting_at_wake_up_is_measured_from_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    watch = StallWatch("m", lambda since, until: "(here)")
    task = asyncio.create_task(watch.run())
    try:
        with caplog.at_level(logging.WARNING):
            watch.parked()
            await asyncio.sleep(STALL_TICK + 0.1)  # the watch finishes its tick and waits
            watch.unparked()
            time.sleep(1.4)  # blocks before the watch has run again
            await asyncio.sleep(0.05)
            assert len(stalls(caplog)) == 1
            watch.parked()
            await asyncio.sleep(STALL_TICK * 3)  # parked: no look, no report
    finally:
        task.cancel()
    [message] = stalls(caplog)
    assert 1.3 <= float(message.split("for ")[1].split(" s")[0]) < 5
