"""When a schedule ticks: `--every` intervals and `--cron` expressions, and which due ticks a
fire enqueues under each catch-up policy. Pure functions of epoch seconds, no I/O."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from statemachine_engine.errors import UsageError

CATCH_UP = ("none", "latest", "all")
#: With `--catch-up none` a tick later than this is dropped (it was missed while nothing ran).
MISSED_AFTER = 60.0
#: With `--catch-up all` one fire enqueues at most this many ticks; the next fire goes on.
MAX_TICKS_PER_FIRE = 1000

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_EVERY = re.compile(r"^([1-9][0-9]*)([smhd])$")


def parse_every(text: str) -> int:
    """`30s`, `5m`, `2h`, `1d` as whole seconds; UsageError naming the value otherwise."""
    match = _EVERY.match(text.strip())
    if match is None:
        raise UsageError(f"every {text!r}: expected a whole number and a unit s, m, h or d")
    return int(match.group(1)) * _UNITS[match.group(2)]


def format_every(seconds: int) -> str:
    """Whole seconds in the largest unit that divides them: 300 -> `5m`, 90 -> `90s`."""
    for unit in ("d", "h", "m"):
        if seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True)
class Timing:
    """Either every `every` seconds (ticks on multiples of it since the epoch, so every host
    agrees) or at the times of a cron expression in `timezone`."""

    every: int | None = None
    cron: str | None = None
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        if (self.every is None) == (self.cron is None):
            raise UsageError("a schedule needs exactly one of every and cron")
        if self.every is not None and self.every < 1:
            raise UsageError(f"every must be at least 1 second, not {self.every}")
        if self.every is not None and self.timezone != "UTC":
            raise UsageError("timezone applies to cron schedules only")
        zone = _zone(self.timezone)
        if self.cron is not None:
            try:
                CronSim(self.cron, datetime.now(zone))
            except CronSimError as exc:
                raise UsageError(f"cron {self.cron!r}: {exc}") from None

    def describe(self) -> str:
        """`every 5m`, `cron 0 3 * * *` or `cron 0 3 * * * (Europe/Berlin)`."""
        if self.every is not None:
            return f"every {format_every(self.every)}"
        zone = "" if self.timezone == "UTC" else f" ({self.timezone})"
        return f"cron {self.cron}{zone}"

    def next_after(self, at: float) -> float:
        """The first tick strictly after `at`."""
        if self.every is not None:
            return float((math.floor(at / self.every) + 1) * self.every)
        assert self.cron is not None
        start = datetime.fromtimestamp(at, _zone(self.timezone))
        return float(next(CronSim(self.cron, start)).timestamp())

    def latest_at_or_before(self, at: float) -> float:
        """The last tick at or before `at`."""
        if self.every is not None:
            return float(math.floor(at / self.every) * self.every)
        assert self.cron is not None
        start = datetime.fromtimestamp(math.floor(at) + 1, _zone(self.timezone))
        return float(next(CronSim(self.cron, start, reverse=True)).timestamp())


def due_ticks(timing: Timing, due: float, now: float, catch_up: str) -> tuple[list[float], float]:
    """The ticks to enqueue when the next tick not yet enqueued is `due` (at or before `now`),
    and the new next-due. `all`: every tick since `due` (at most MAX_TICKS_PER_FIRE, then the
    next fire goes on); `latest`: only the newest; `none`: the newest unless it is more than
    MISSED_AFTER seconds late."""
    if catch_up == "all":
        ticks: list[float] = []
        tick = due
        while tick <= now and len(ticks) < MAX_TICKS_PER_FIRE:
            ticks.append(tick)
            tick = timing.next_after(tick)
        return ticks, tick
    latest = max(due, timing.latest_at_or_before(now))
    late = now - latest > MISSED_AFTER
    return ([] if catch_up == "none" and late else [latest]), timing.next_after(latest)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"timezone {name!r}: not a known IANA time zone") from None
