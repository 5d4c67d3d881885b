"""The `schedules:` list of a system file: the same schedules `statemachine-cli schedule add`
stores, declared next to the machines that handle their jobs.

```yaml
schedules:
  - {name: cleanup, every: 5m, type: cleanup}
  - {name: nightly, cron: "0 3 * * *", timezone: Europe/Berlin, type: report, catch_up: all}
```
"""

from __future__ import annotations

from typing import Any

from statemachine_engine.config.model import Position
from statemachine_engine.config.problems import did_you_mean
from statemachine_engine.config.yamlsource import YamlList, YamlMap, plain
from statemachine_engine.database.schedules import ScheduleSpec
from statemachine_engine.errors import ConfigError, StateMachineError
from statemachine_engine.ticks import Timing, parse_every

SCHEDULE_KEYS = ("name", "type", "every", "cron", "timezone", "payload", "machine_type", "catch_up")


def system_schedules(root: YamlMap) -> tuple[ScheduleSpec, ...]:
    """The schedules a system file declares (none without `schedules:`)."""
    value = root.get("schedules")
    if value is None:
        return ()
    if not isinstance(value, YamlList):
        raise _error(root.where("schedules"), "`schedules:` must be a list")
    specs = [_schedule(item, value.where(i)) for i, item in enumerate(value)]
    seen: set[str] = set()
    for i, spec in enumerate(specs):
        if spec.name in seen:
            raise _error(value.where(i), f"schedule name '{spec.name}' is used twice")
        seen.add(spec.name)
    return tuple(specs)


def _schedule(item: Any, where: Position) -> ScheduleSpec:
    if not isinstance(item, YamlMap):
        raise _error(
            where, "a schedule must be a mapping", "write `- {name: N, every: 5m, type: T}`"
        )
    for key in item:
        if key not in SCHEDULE_KEYS:
            hint = did_you_mean(str(key), SCHEDULE_KEYS) or "allowed: " + ", ".join(SCHEDULE_KEYS)
            raise _error(item.where_key(key), f"unknown schedule key {str(key)!r}", hint)
    for key in ("name", "type"):
        if not isinstance(item.get(key), str) or not item.get(key):
            raise _error(item.pos, f"schedule has no `{key}:` string")
    name = str(item["name"])
    try:
        every = item.get("every")
        seconds = None if every is None else parse_every(str(every))
        timezone = item.get("timezone", "UTC")
        timing = Timing(seconds, _text(item.get("cron")), str(timezone))
        payload = item.get("payload")
        return ScheduleSpec(
            name,
            str(item["type"]),
            timing,
            None if payload is None else plain(payload),
            _text(item.get("machine_type")),
            str(item.get("catch_up", "latest")),
        )
    except StateMachineError as exc:
        raise _error(item.pos, f"schedule {name}: {exc}") from None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _error(pos: Position, message: str, hint: str | None = None) -> ConfigError:
    return ConfigError(message, file=pos.file, line=pos.line, column=pos.column, hint=hint)
