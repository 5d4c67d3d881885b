"""statemachine_engine.testing: the harness users test their own machines with, on the real
engine and store, a virtual clock and stubbed shell commands."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from statemachine_engine.testing import MachineHarness

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

WORKER = """\
name: Worker
initial_state: waiting
metadata: {job_type: task}
states: [waiting, working, resting, on]
actions:
  waiting: [{type: check_database_queue, job_type: task}]
  working:
    - {type: bash, command: "printf '%s' {data.text}", success: done}
  resting: [{type: complete_job, result: "{output}", success: rested}]
transitions:
  - {from: waiting, to: working, event: new_job}
  - {from: waiting, to: waiting, event: no_jobs}
  - {from: working, to: resting, event: done}
  - {from: resting, to: waiting, event: rested}
  - {from: "*", to: on, event: power}
  - {from: on, to: waiting, event: timeout(3600)}
"""


@pytest.fixture
def worker(tmp_path: Path) -> Path:
    path = tmp_path / "worker.yaml"
    path.write_text(WORKER)
    (tmp_path / "actions").mkdir()
    return path


async def test_the_documented_api(worker: Path, tmp_path: Path) -> None:
    async with MachineHarness(worker, actions_dir=tmp_path / "actions", tmp_path=tmp_path) as m:
        m.stub_bash("printf*", exit_code=0, stdout="ok")
        m.add_job("task", {"text": "hi"}, job_id="j1")
        await m.settle()
        assert m.job("j1").status == "completed"
        assert m.job("j1").result == "ok"
        assert m.commands == ["printf '%s' hi"]
        await m.send("power", {"k": "v"})
        await m.settle()
        assert m.state == "on"
        assert ("working", "resting", "done") in m.transitions
        m.clock.advance(3600)
        await m.settle()
        assert m.state == "waiting"
        assert m.transitions[-1] == ("on", "waiting", "timeout(3600)")


async def test_a_failing_stub_retries_with_backoff_on_the_virtual_clock(worker: Path) -> None:
    async with MachineHarness(worker, backoff_base=60.0) as m:
        m.stub_bash("printf*", exit_code=3, stderr="flaky")
        m.add_job("task", {"text": "hi"}, job_id="j1", max_attempts=2)
        await m.settle()
        job = m.job("j1")
        assert (job.status, job.attempts) == ("pending", 1)
        assert job.error_message == "exit code 3: flaky"
        m.stub_bash("printf*", stdout="second time")
        m.clock.advance(59)
        await m.settle()
        assert m.job("j1").attempts == 1, "not before its backoff"
        m.clock.advance(1)
        await m.settle()
        assert (m.job("j1").status, m.job("j1").result) == ("completed", "second time")
        assert any("attempt 1 of 2 failed" in line for line in m.logs)


async def test_strict_refuses_a_command_without_a_stub(worker: Path) -> None:
    async with MachineHarness(worker, strict=True) as m:
        m.add_job("task", {"text": "hi"}, job_id="j1", max_attempts=1)
        await m.settle()
        assert m.job("j1").status == "failed"
        assert "no stub for command" in (m.job("j1").error_message or "")


async def test_unstubbed_commands_run_for_real(worker: Path) -> None:
    async with MachineHarness(worker) as m:
        m.add_job("task", {"text": "real"}, job_id="j1")
        await m.settle()
        assert m.job("j1").result == "real"


async def test_moving_the_clock_right_after_a_state_is_entered_fires_its_timer(
    worker: Path,
) -> None:
    async with MachineHarness(worker) as m:
        await m.send("power")
        await m.engine().wait_for_state("on")  # not parked yet
        m.clock.advance(3600)
        await m.settle()
        assert m.state == "waiting"


async def test_the_pytest_fixture(
    machine_harness: Callable[..., MachineHarness], worker: Path, tmp_path: Path
) -> None:
    async with machine_harness(worker) as m:
        assert m.tmp_path == tmp_path
        assert m.state == "waiting"


async def test_a_system_delivers_events_between_its_machines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    example = EXAMPLES / "controller_worker" / "system.yaml"
    async with MachineHarness.system(example, tmp_path=tmp_path) as m:
        assert set(m.names) == {"controller", "batch_worker"}
        m.add_job("batch", {"text": "the quick brown fox"}, job_id="b1")
        await m.settle()
        assert m.job("b1").status == "completed"
        assert m.state_of("controller") == "waiting"
        sent = [(e.source_machine, e.target_machine, e.event_type) for e in m.events_sent]
        assert ("controller", "batch_worker", "work") in sent
        assert ("batch_worker", "controller", "work_done") in sent


async def check_simple_worker(config: Path) -> None:
    """The simple_worker example's behaviour, as its README describes it."""
    async with MachineHarness(config) as m:
        m.stub_bash("mkdir -p data/output")
        m.stub_bash("printf 'job %s: %s\\n'*")
        m.add_job("simple_task", {"message": "hello"}, job_id="a")
        m.add_job("simple_task", None, job_id="b", max_attempts=1)
        await m.settle()
        assert m.job("a").status == "completed"
        assert m.job("b").status == "failed"
        assert "data.message" in (m.job("b").error_message or "")
        await m.send("stop")
        await m.settle()
        assert m.state == "stopped"
        assert m.exit_code() == 0


async def test_the_simple_worker_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    await check_simple_worker(EXAMPLES / "simple_worker" / "worker.yaml")


async def test_a_broken_copy_of_an_example_fails_its_harness_test(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    text = (EXAMPLES / "simple_worker" / "worker.yaml").read_text()
    broken = tmp_path / "worker.yaml"
    broken.write_text(text.replace("      success: job_done\n", "      success: finished\n", 1))
    assert broken.read_text() != text
    with pytest.raises(AssertionError):
        await check_simple_worker(broken)


async def test_the_pipeline_example_as_a_system(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the commands run for real and write under data/
    async with MachineHarness.system(EXAMPLES / "pipeline" / "system.yaml") as m:
        for n in range(3):
            m.add_job("generate", {"records": 3}, job_id=f"g{n}")
        await m.settle()
        assert [m.job(f"g{n}").status for n in range(3)] == ["completed"] * 3
        assert m.state_of("analyzer") == "waiting"
        m.clock.advance(2)  # timeout(2): the summary once the stream is quiet
        await m.settle()
        summaries = [t for t in m.transitions_of("analyzer") if t[2] == "timeout(2)"]
        assert summaries == [("waiting", "summarizing", "timeout(2)")]
        assert m.state_of("analyzer") == "idle"


async def test_the_custom_actions_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    example = EXAMPLES / "custom_actions"
    async with MachineHarness(example / "text_stats.yaml", actions_dir=example / "actions") as m:
        m.add_job("text_stats", {"text": "one two two"}, job_id="t1")
        m.add_job("text_stats", {"words": 3}, job_id="t2", max_attempts=1)
        await m.settle()
        assert m.job("t1").status == "completed"
        assert m.job("t1").result["words"] == 3
        assert m.job("t2").status == "failed"
        assert (tmp_path / "data" / "custom_actions" / "stats.jsonl").exists()


async def test_the_batch_worker_example_with_its_job_handed_over(tmp_path: Path) -> None:
    worker = EXAMPLES / "batch_controller" / "worker.yaml"
    async with MachineHarness(
        worker, handed_job=("report", {"title": "Quarterly"}), initial_context={"title": "Q"}
    ) as m:
        m.stub_bash("*")
        await m.settle()
        assert m.state == "done"
        job = m.job(m.context["job_id"])
        assert (job.status, job.result) == ("completed", "Quarterly")
