"""`statemachine-cli schedule add|list|pause|resume|remove`, in-process on a SQLite file:
what each prints, what it stores, and one stderr line with exit 2 for bad input."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from statemachine_engine.cli.db import main
from statemachine_engine.database.sqlite import SQLiteStore

PREFIX = "statemachine-cli: error: "


@dataclass
class Cli:
    db: Path
    capsys: pytest.CaptureFixture[str]

    def run(self, *argv: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        rc = main(["--db", f"sqlite:///{self.db}", *argv])
        out, err = self.capsys.readouterr()
        return rc, out, err

    def error(self, *argv: str) -> str:
        rc, _, err = self.run(*argv)
        assert rc == 2, err
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith(PREFIX), err
        return lines[0][len(PREFIX) :]


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(tmp_path / "sm.db", capsys)


def test_add_then_list_pause_resume_remove(cli: Cli) -> None:
    rc, out, _ = cli.run(
        "schedule", "add", "beat", "--every", "30s", "--type", "tick",
        "--payload", '{"size": 3}', "--machine-type", "worker", "--catch-up", "all",
    )  # fmt: skip
    assert rc == 0 and out.startswith("added schedule beat (every 30s, next tick ")
    rc, out, _ = cli.run(
        "schedule", "add", "nightly", "--cron", "0 3 * * *", "--timezone", "Europe/Berlin",
        "--type", "report",
    )  # fmt: skip
    assert rc == 0 and "cron 0 3 * * * (Europe/Berlin)" in out

    rc, out, _ = cli.run("schedule", "add", "hourly", "--every", "60m", "--type", "t")
    assert rc == 0 and out.startswith("added schedule hourly (every 1h, next tick ")
    cli.run("schedule", "remove", "hourly")
    rc, out, _ = cli.run("schedule", "list", "--json")
    listed = {s["name"]: s for s in json.loads(out)}
    assert listed["beat"]["every_seconds"] == 30
    assert listed["beat"]["payload"] == {"size": 3}
    assert (listed["beat"]["machine_type"], listed["beat"]["catch_up"]) == ("worker", "all")
    assert (listed["nightly"]["cron"], listed["nightly"]["catch_up"]) == ("0 3 * * *", "latest")
    assert listed["nightly"]["next_due"] % 3600 == 0  # 03:00 in Berlin is a whole UTC hour

    assert cli.run("schedule", "pause", "beat")[1] == "paused schedule beat (every 30s)\n"
    rc, out, _ = cli.run("schedule")  # no action: the list as a table
    assert rc == 0
    header, beat, nightly = out.splitlines()
    assert header.split()[:2] == ["NAME", "WHEN"]
    assert beat.split()[:5] == ["beat", "every", "30s", "tick", "all"] and " paused " in beat
    assert nightly.startswith("nightly ") and " active " in nightly
    assert cli.run("schedule", "resume", "beat")[1].startswith("resumed schedule beat (every")
    assert cli.run("schedule", "remove", "beat")[1] == "removed schedule beat\n"
    store = SQLiteStore(str(cli.db))
    try:
        assert [s.name for s in store.list_schedules()] == ["nightly"]
    finally:
        store.close()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--every", "3q"], "every '3q': expected a whole number and a unit s, m, h or d"),
        (["--every", "0s"], "every '0s': expected a whole number"),
        (["--cron", "* *"], "cron '* *': Wrong number of fields"),
        (["--cron", "* * * * *", "--timezone", "Nowhere/City"], "timezone 'Nowhere/City'"),
        (["--every", "5s", "--timezone", "Europe/Berlin"], "timezone applies to cron"),
        (["--every", "5s", "--payload", "[1]"], "the payload must be a JSON object"),
        (["--every", "5s", "--payload", "{"], "--payload is not valid JSON"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(cli: Cli, argv: list[str], message: str) -> None:
    assert message in cli.error("schedule", "add", "s", "--type", "t", *argv)
    assert not cli.db.exists() or cli.run("schedule", "list")[1] == "no schedules\n"


def test_names_taken_or_unknown(cli: Cli) -> None:
    cli.run("schedule", "add", "beat", "--every", "1m", "--type", "t")
    assert cli.error("schedule", "add", "beat", "--every", "1m", "--type", "t") == (
        "schedule 'beat' exists already"
    )
    for action in ("pause", "resume", "remove"):
        assert cli.error("schedule", action, "nope") == "no schedule 'nope'"
    assert "invalid schedule name" in cli.error(
        "schedule", "add", "a b", "--every", "1m", "--type", "t"
    )


def test_listing_a_missing_database_creates_nothing(cli: Cli) -> None:
    rc, _, _ = cli.run("schedule", "list")
    assert rc == 2 and not cli.db.exists()
