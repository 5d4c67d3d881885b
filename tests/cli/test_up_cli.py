"""`statemachine up` in-process parts: the UI flag and argument handling."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from statemachine_engine.cli import up
from statemachine_engine.cli.run import main as run_main
from statemachine_engine.tools.system import load_system


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
