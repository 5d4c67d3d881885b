"""`statemachine up` in-process parts: the UI flag and argument handling."""

from __future__ import annotations

import asyncio
import dataclasses
import io
from pathlib import Path

import pytest

from statemachine_engine.cli import up
from statemachine_engine.cli.run import main as run_main
from statemachine_engine.clock import VirtualClock
from statemachine_engine.tools.system import RestartPolicy, SystemSpec, load_system


def spec(tmp_path: Path, ui: bool):  # type: ignore[no-untyped-def]
    (tmp_path / "m.yaml").write_text("initial_state: a\n")
    path = tmp_path / "system.yaml"
    path.write_text(
        f"ui: {'true' if ui else 'false'}\nmachines:\n  - {{config: m.yaml, name: m}}\n"
    )
    return load_system(path)


def test_ui_true_starts_statemachine_ui_when_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "bin" / "fake-ui"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    monkeypatch.setattr(up, "UI_SCRIPT", "fake-ui")
    monkeypatch.setenv("PATH", str(script.parent))
    supervisor = up.Supervisor(spec(tmp_path, True), "sqlite:///x.db", out=io.StringIO())
    assert [i.name for i in supervisor.instances] == ["m", "ui"]
    assert supervisor.instances[1].argv == [str(script), "--db", "sqlite:///x.db"]
    assert supervisor.instances[0].env["STATEMACHINE_DB"] == "sqlite:///x.db"
    no_ui = up.Supervisor(spec(tmp_path, True), "sqlite:///x.db", ui=False, out=io.StringIO())
    assert [i.name for i in no_ui.instances] == ["m"]
    on_port = up.Supervisor(
        spec(tmp_path, True), "sqlite:///x.db", ui_port=18301, out=io.StringIO()
    )
    assert on_port.instances[1].argv[-2:] == ["--port", "18301"]


def test_ui_true_without_the_ui_warns_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(up, "UI_SCRIPT", "no-such-ui-script")
    monkeypatch.setenv("PATH", str(tmp_path))
    out = io.StringIO()
    supervisor = up.Supervisor(spec(tmp_path, True), "sqlite:///x.db", out=out)
    assert [i.name for i in supervisor.instances] == ["m"]
    assert out.getvalue().count("no-such-ui-script is not installed") == 1


def test_statemachine_up_dispatches_and_reports_usage_errors(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run_main(["up"]) == 2
    assert capsys.readouterr().err.startswith("statemachine up: error:")


STUBBORN = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)\n"
)


async def test_a_machine_ignoring_sigterm_is_killed_after_the_grace(tmp_path: Path) -> None:
    import asyncio
    import dataclasses
    import sys

    system = dataclasses.replace(spec(tmp_path, False), stop_timeout=0.3)
    out = io.StringIO()
    supervisor = up.Supervisor(system, "sqlite:///x.db", out=out)
    supervisor.instances = [up.Instance("stubborn", [sys.executable, "-c", STUBBORN], {})]
    task = asyncio.create_task(supervisor.run())
    deadline = asyncio.get_running_loop().time() + 10
    while "stubborn | ready" not in out.getvalue():
        assert asyncio.get_running_loop().time() < deadline, out.getvalue()
        await asyncio.sleep(0.02)
    supervisor.stop()
    assert await asyncio.wait_for(task, 10) == 0
    text = out.getvalue()
    assert "stubborn | did not stop within 0.3 s; killing" in text
    assert text.endswith("| all machines stopped\n")


class Scripted(up.Supervisor):
    """A supervisor whose machine runs are scripted: each run lasts `run_for` virtual
    seconds and exits with the next code; the start times are recorded."""

    def __init__(self, system: SystemSpec, codes: list[int], run_for: float = 0.0) -> None:
        self.virtual = VirtualClock(start=0.0)
        super().__init__(system, "sqlite:///x.db", out=io.StringIO(), clock=self.virtual)
        self.codes = codes
        self.run_for = run_for
        self.starts: list[float] = []

    async def _run_once(self, inst: up.Instance) -> int:
        self.starts.append(self.virtual.now())
        await self.virtual.sleep(self.run_for)
        return self.codes.pop(0)

    def lines(self) -> list[str]:
        assert isinstance(self.out, io.StringIO)
        return [line.split("| ", 1)[1] for line in self.out.getvalue().splitlines()]


async def drive(supervisor: Scripted, step: float = 0.25) -> None:
    """Run the supervisor to its end, moving its virtual clock `step` at a time."""
    task = asyncio.create_task(supervisor.run())
    for _ in range(10_000):
        for _ in range(10):
            await asyncio.sleep(0)
        if task.done():
            await task
            return
        supervisor.virtual.advance(step)
    raise AssertionError("the supervisor did not end")


def restart_spec(tmp_path: Path, policy: RestartPolicy) -> SystemSpec:
    system: SystemSpec = spec(tmp_path, False)
    return dataclasses.replace(system, restart=policy)


async def test_restart_delays_double_up_to_the_cap_then_give_up(tmp_path: Path) -> None:
    policy = RestartPolicy(max_restarts=5, window=60.0, backoff=0.5, max_backoff=3.0)
    supervisor = Scripted(restart_spec(tmp_path, policy), [1] * 6)
    await drive(supervisor)
    gaps = [b - a for a, b in zip(supervisor.starts, supervisor.starts[1:], strict=False)]
    assert gaps == [0.5, 1.0, 2.0, 3.0, 3.0]  # doubling, capped at max_backoff
    assert supervisor.lines()[-2:] == [
        "crashed (exit 1) 6 times within 60 s; giving up",
        "every machine has ended; failed: m",
    ]


async def test_crashes_older_than_the_window_are_forgotten(tmp_path: Path) -> None:
    policy = RestartPolicy(max_restarts=2, window=10.0, backoff=0.5, max_backoff=30.0)
    # Each run lasts 20 s: every crash is alone in its window, so the delay stays at the
    # base and the machine is restarted however many times it crashes.
    supervisor = Scripted(restart_spec(tmp_path, policy), [1, 1, 1, 1, 0], run_for=20.0)
    await drive(supervisor)
    assert supervisor.lines().count("crashed (exit 1); restarting in 0.5 s") == 4
    assert len(supervisor.starts) == 5
    assert supervisor.lines()[-1] == "every machine has ended"


async def test_crashes_within_the_window_give_up(tmp_path: Path) -> None:
    policy = RestartPolicy(max_restarts=2, window=10.0, backoff=0.5, max_backoff=30.0)
    supervisor = Scripted(restart_spec(tmp_path, policy), [1, 1, 1], run_for=2.0)
    await drive(supervisor)
    assert len(supervisor.starts) == 3
    assert "crashed (exit 1) 3 times within 10 s; giving up" in supervisor.lines()


async def test_a_child_exiting_with_2_is_not_restarted(tmp_path: Path) -> None:
    supervisor = Scripted(restart_spec(tmp_path, RestartPolicy(backoff=0.5)), [2, 1])
    await drive(supervisor)
    assert len(supervisor.starts) == 1
    assert supervisor.lines() == [
        "exited with 2 (bad input or start refused, see above); not restarting",
        "every machine has ended; failed: m",
    ]
