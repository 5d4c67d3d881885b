"""Tick arithmetic (statemachine_engine.ticks) for all inputs: which ticks a fire enqueues under
each catch-up policy, and cron times across daylight-saving changes."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from statemachine_engine.errors import UsageError
from statemachine_engine.ticks import (
    MAX_TICKS_PER_FIRE,
    MISSED_AFTER,
    Timing,
    due_ticks,
    format_every,
    parse_every,
)

EPOCH_2026 = 1_767_225_600  # 2026-01-01 00:00 UTC

intervals = st.sampled_from([1, 7, 60, 300, 3600, 86400])
cron_timings = st.sampled_from(
    [
        Timing(cron="*/5 * * * *"),
        Timing(cron="30 2 * * *", timezone="Europe/Berlin"),
        Timing(cron="0 9 * * 1-5", timezone="America/New_York"),
    ]
)
timings = st.one_of(intervals.map(lambda every: Timing(every=every)), cron_timings)


@given(
    timings,
    st.integers(0, 365 * 86400),
    st.floats(0, 30 * 86400),
    st.sampled_from(["all", "latest", "none"]),
)
def test_a_fire_enqueues_due_ticks_in_order_and_moves_past_them(
    timing: Timing, offset: int, late: float, catch_up: str
) -> None:
    due = timing.next_after(EPOCH_2026 + offset)
    now = due + late
    ticks, next_due = due_ticks(timing, due, now, catch_up)
    assert ticks == sorted(set(ticks))
    assert all(due <= t <= now for t in ticks)
    latest = timing.latest_at_or_before(now)
    assert due <= latest <= now < timing.next_after(latest)
    if catch_up == "all":
        assert ticks[0] == due and len(ticks) <= MAX_TICKS_PER_FIRE
        assert next_due == timing.next_after(ticks[-1])
        assert next_due > now or len(ticks) == MAX_TICKS_PER_FIRE
        return
    assert next_due == timing.next_after(latest) > now
    dropped = catch_up == "none" and now - latest > MISSED_AFTER
    assert ticks == ([] if dropped else [latest])


def test_cron_ticks_follow_the_local_clock_across_daylight_saving() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    timing = Timing(cron="0 3 * * *", timezone="Europe/Berlin")
    at = datetime(2026, 3, 27, 12, tzinfo=berlin).timestamp()  # DST starts on 29 March
    seen = []
    for _ in range(4):
        at = timing.next_after(at)
        seen.append(datetime.fromtimestamp(at, berlin).strftime("%d %H:%M %Z"))
    assert seen == ["28 03:00 CET", "29 03:00 CEST", "30 03:00 CEST", "31 03:00 CEST"]


@pytest.mark.parametrize(
    ("text", "seconds"), [("1s", 1), ("30s", 30), ("5m", 300), ("2h", 7200), ("1d", 86400)]
)
def test_every_units(text: str, seconds: int) -> None:
    assert parse_every(text) == seconds
    assert parse_every(format_every(seconds)) == seconds


@pytest.mark.parametrize("text", ["", "5", "0s", "1.5s", "-1m", "5 minutes", "1w"])
def test_every_refuses_other_text(text: str) -> None:
    with pytest.raises(UsageError, match=f"every {text!r}: expected a whole number"):
        parse_every(text)
