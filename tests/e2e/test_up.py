"""`statemachine up`: real machine processes started, restarted after a crash, stopped."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
from pathlib import Path

from .conftest import BIN, Cli, wait_until

SLEEPER = """\
name: sleeper
initial_state: waiting
states: [waiting, stopped]
events: [no_events, stop]
actions:
  waiting: [{type: check_events}]
transitions:
  - {from: waiting, to: waiting, event: no_events}
  - {from: "*", to: stopped, event: stop}
"""


class Up:
    """A running `statemachine up` and the lines it has printed so far."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def pids(self, name: str) -> list[int]:
        pattern = re.compile(rf"^{re.escape(name)}\s+\| started \(pid (\d+)\)$")
        return [int(m.group(1)) for line in list(self.lines) if (m := pattern.match(line))]

    def count(self, fragment: str) -> int:
        return sum(1 for line in list(self.lines) if fragment in line)

    def finish(self, timeout: float = 15) -> int:
        code = self.proc.wait(timeout=timeout)
        self.reader.join(timeout=5)
        return code


def gone(pid: int) -> bool:
    """True when `pid` has exited (a zombie no one reaps yet counts as exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def test_up_starts_restarts_and_stops_real_machines(
    workdir: Path, e2e_env: dict[str, str], db_url: str
) -> None:
    (workdir / "sleeper.yaml").write_text(SLEEPER)
    (workdir / "system.yaml").write_text(
        f"db: {db_url}\nui: false\nstop_timeout: 5\nrestart: {{backoff: 0.1}}\n"
        "machines:\n  - {config: sleeper.yaml, name: s, instances: 2, env: {GREETING: hi}}\n"
    )
    up = Up([str(BIN / "statemachine"), "up", "system.yaml"], workdir, e2e_env)
    try:
        wait_until(lambda: up.count("started in state waiting") == 2, 15, "both machines up")
        assert up.pids("s-1") and up.pids("s-2")
        assert any(line.startswith("s-1 | ") and "[s-1]" in line for line in up.lines)
        first = up.pids("s-1")[0]
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: len(up.pids("s-1")) == 2, 10, "s-1 restarted")
        assert up.count("s-1 | crashed (exit -9); restarting in 0.1 s") == 1
        wait_until(lambda: up.count("started in state waiting") == 3, 15, "s-1 up again")
        alive = [up.pids("s-1")[1], up.pids("s-2")[0]]
        up.proc.send_signal(signal.SIGINT)
        assert up.finish() == 0
    finally:
        if up.proc.poll() is None:
            up.proc.kill()
            up.finish()
    assert up.count("up  | all machines stopped") == 1
    assert up.count("| stopped (exit 0)") == 2
    assert all(gone(pid) for pid in alive)


CRASHER = """\
name: crasher
initial_state: crashing
states: [crashing, done]
events: [crashed]
actions:
  crashing: [{type: crash}]
transitions:
  - {from: crashing, to: done, event: crashed}
"""

CRASH_ACTION = """\
import os
from typing import Any

from statemachine_engine.actions import BaseAction


class CrashAction(BaseAction):
    async def execute(self, context: dict[str, Any]) -> str | None:
        print("crashing", flush=True)
        os._exit(3)
"""


def test_up_gives_up_on_a_machine_that_keeps_crashing(
    workdir: Path, e2e_env: dict[str, str], db_url: str
) -> None:
    (workdir / "actions").mkdir()
    (workdir / "actions" / "crash_action.py").write_text(CRASH_ACTION)
    (workdir / "crasher.yaml").write_text(CRASHER)
    (workdir / "system.yaml").write_text(
        f"db: {db_url}\nui: false\nrestart: {{max_restarts: 2, backoff: 0.05}}\n"
        "machines:\n  - {config: crasher.yaml, name: crasher, actions_dir: actions}\n"
    )
    up = Up([str(BIN / "statemachine-up"), "system.yaml"], workdir, e2e_env)
    assert up.finish(timeout=60) == 1
    assert len(up.pids("crasher")) == 3
    assert up.count("crasher | crashing") == 3
    assert up.count("crasher | crashed (exit 3) 3 times within 60 s; giving up") == 1
    assert up.count("every machine has ended; failed: crasher") == 1


def test_up_does_not_restart_a_machine_that_exits_with_2(
    workdir: Path, e2e_env: dict[str, str], db_url: str
) -> None:
    (workdir / "broken.yaml").write_text("states: [a]\n")
    (workdir / "system.yaml").write_text(
        f"db: {db_url}\nui: false\nrestart: {{backoff: 0.05}}\n"
        "machines:\n  - {config: broken.yaml, name: broken}\n"
    )
    up = Up([str(BIN / "statemachine-up"), "system.yaml"], workdir, e2e_env)
    assert up.finish(timeout=60) == 1
    assert len(up.pids("broken")) == 1
    assert up.count("missing `initial_state`") == 1
    assert (
        up.count("broken | exited with 2 (bad input or start refused, see above); not restarting")
        == 1
    )
    assert up.count("every machine has ended; failed: broken") == 1


def test_a_machine_already_running_is_reported_once_not_retried(
    workdir: Path, e2e_env: dict[str, str], db_url: str
) -> None:
    (workdir / "sleeper.yaml").write_text(SLEEPER)
    (workdir / "system.yaml").write_text(
        f"db: {db_url}\nui: false\nrestart: {{backoff: 0.05}}\n"
        "machines:\n  - {config: sleeper.yaml, name: s}\n"
    )
    first = Up([str(BIN / "statemachine"), "up", "system.yaml"], workdir, e2e_env)
    try:
        wait_until(lambda: first.count("started in state waiting") == 1, 15, "s up")
        second = Up([str(BIN / "statemachine"), "up", "system.yaml"], workdir, e2e_env)
        assert second.finish(timeout=60) == 1
        assert len(second.pids("s")) == 1
        assert second.count("already running") >= 1
        assert second.count("not restarting") == 1
        assert first.proc.poll() is None
    finally:
        first.proc.send_signal(signal.SIGTERM)
        first.finish()


def test_machines_die_with_a_killed_supervisor_and_a_new_one_runs_them(
    workdir: Path, e2e_env: dict[str, str], db_url: str
) -> None:
    (workdir / "sleeper.yaml").write_text(SLEEPER)
    (workdir / "system.yaml").write_text(
        f"db: {db_url}\nui: false\nrestart: {{backoff: 0.1}}\n"
        "machines:\n  - {config: sleeper.yaml, name: s, instances: 2}\n"
    )
    argv = [str(BIN / "statemachine"), "up", "system.yaml"]
    up = Up(argv, workdir, e2e_env)
    try:
        wait_until(lambda: up.count("started in state waiting") == 2, 15, "both machines up")
        machines = [up.pids("s-1")[0], up.pids("s-2")[0]]
        up.proc.send_signal(signal.SIGKILL)
        up.finish()
        wait_until(lambda: all(gone(pid) for pid in machines), 15, "the orphans gone")
    finally:
        if up.proc.poll() is None:
            up.proc.kill()
            up.finish()
    again = Up(argv, workdir, e2e_env)
    try:
        wait_until(lambda: again.count("started in state waiting") == 2, 15, "both up again")
        assert again.count("already running") == 0
        again.proc.send_signal(signal.SIGTERM)
        assert again.finish() == 0
    finally:
        if again.proc.poll() is None:
            again.proc.kill()
            again.finish()


def test_up_reports_a_bad_system_file_in_one_line(workdir: Path, e2e_env: dict[str, str]) -> None:
    (workdir / "system.yaml").write_text("machines:\n  - {config: nope.yaml}\n")
    proc = subprocess.run(
        [str(BIN / "statemachine"), "up", "system.yaml"],
        cwd=workdir,
        env=e2e_env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert proc.stderr == (
        "statemachine up: error: system.yaml:2:14: machine config 'nope.yaml' not found\n"
    )


def test_example_system_file_runs_the_controller_worker_example(
    workdir: Path, e2e_env: dict[str, str], db_url: str, cli: Cli
) -> None:
    system = Path(__file__).parents[2] / "examples" / "controller_worker" / "system.yaml"
    up = Up([str(BIN / "statemachine"), "up", str(system), "--db", db_url], workdir, e2e_env)
    try:
        wait_until(lambda: up.count("started in state") == 2, 15, "both machines up")
        cli("add-job", "batch-1", "--type", "batch", "--data", '{"text": "the quick brown fox"}')
        results = workdir / "data" / "controller_worker" / "results.log"
        wait_until(lambda: results.exists() and results.read_text(), 15, "the batch result")
        assert results.read_text() == "batch-1: 4 words, by batch_worker\n"
        up.proc.send_signal(signal.SIGTERM)
        assert up.finish() == 0
    finally:
        if up.proc.poll() is None:
            up.proc.kill()
            up.finish()
