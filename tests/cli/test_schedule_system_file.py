"""`schedules:` in a system file: parsed with file:line errors, and stored by `statemachine up`
before it starts the machines (a schedule of that name is changed, others are left alone)."""

from __future__ import annotations

from pathlib import Path

import pytest

from statemachine_engine.cli import up
from statemachine_engine.database.schedules import ScheduleSpec
from statemachine_engine.database.sqlite import SQLiteStore
from statemachine_engine.errors import ConfigError
from statemachine_engine.ticks import Timing
from statemachine_engine.tools.system import load_system

MACHINE = (
    "name: w\ninitial_state: a\nstates: [a, b]\ntransitions:\n  - {from: a, to: b, event: go}\n"
)


def system_file(tmp_path: Path, schedules: str) -> Path:
    (tmp_path / "w.yaml").write_text(MACHINE)
    path = tmp_path / "system.yaml"
    path.write_text(f"db: sqlite:///sm.db\nmachines:\n  - config: w.yaml\n{schedules}")
    return path


def test_schedules_are_parsed(tmp_path: Path) -> None:
    spec = load_system(
        system_file(
            tmp_path,
            "schedules:\n"
            "  - {name: cleanup, every: 5m, type: cleanup, payload: {keep: 3}}\n"
            "  - name: nightly\n"
            '    cron: "0 3 * * *"\n'
            "    timezone: Europe/Berlin\n"
            "    type: report\n"
            "    machine_type: reporter\n"
            "    catch_up: all\n",
        )
    )
    cleanup, nightly = spec.schedules
    assert (cleanup.name, cleanup.job_type, cleanup.timing.every) == ("cleanup", "cleanup", 300)
    assert (cleanup.payload, cleanup.catch_up) == ({"keep": 3}, "latest")
    assert (nightly.timing.cron, nightly.timing.timezone) == ("0 3 * * *", "Europe/Berlin")
    assert (nightly.machine_type, nightly.catch_up) == ("reporter", "all")
    assert load_system(system_file(tmp_path, "")).schedules == ()


@pytest.mark.parametrize(
    ("schedules", "where", "message"),
    [
        ("schedules: {a: 1}\n", ":4:12", "`schedules:` must be a list"),
        ("schedules:\n  - {name: a, every: 5m, typ: t}\n", ":5:26", "unknown schedule key 'typ'"),
        ("schedules:\n  - {name: a, every: 5m}\n", ":5:5", "schedule has no `type:` string"),
        ("schedules:\n  - {name: a, every: 5x, type: t}\n", ":5:5", "schedule a: every '5x'"),
        ("schedules:\n  - {name: a, type: t}\n", ":5:5", "exactly one of every and cron"),
        (
            "schedules:\n  - {name: a, every: 1m, type: t}\n  - {name: a, every: 2m, type: t}\n",
            ":6:5",
            "schedule name 'a' is used twice",
        ),
    ],
)
def test_bad_schedules_name_file_line_and_column(
    tmp_path: Path, schedules: str, where: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_system(system_file(tmp_path, schedules))
    assert message in str(caught.value)
    assert f"system.yaml{where}" in str(caught.value)


def test_up_stores_the_schedules_before_starting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[str] = []

    async def run(self: up.Supervisor) -> int:
        started.append("machines")
        return 0

    monkeypatch.setattr(up.Supervisor, "run", run)
    store = SQLiteStore(str(tmp_path / "sm.db"))
    try:
        store.add_schedule(ScheduleSpec("other", "t", Timing(every=60)))
        store.add_schedule(ScheduleSpec("cleanup", "old", Timing(every=60)))
        path = system_file(tmp_path, "schedules:\n  - {name: cleanup, every: 5m, type: cleanup}\n")
        assert up.main([str(path), "--no-ui"]) == 0
        assert started == ["machines"]
        stored = {s.name: s.spec for s in store.list_schedules()}
        assert (stored["cleanup"].job_type, stored["cleanup"].timing.every) == ("cleanup", 300)
        assert stored["other"].job_type == "t"
    finally:
        store.close()
