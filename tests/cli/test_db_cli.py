"""statemachine-cli / statemachine-db: every command in-process, plus real console-script runs."""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from statemachine_engine.cli.common import JsonLineFormatter, run_cli
from statemachine_engine.cli.db import main
from statemachine_engine.database.connect import open_store
from statemachine_engine.database.records import Step
from statemachine_engine.database.store import Store

BIN = Path(sys.executable).parent
CLI = BIN / "statemachine-cli"
DB_ALIAS = BIN / "statemachine-db"
PREFIX = "statemachine-cli: error: "


@dataclass
class Result:
    rc: int
    out: str
    err: str

    def one_error_line(self) -> str:
        """Assert the run failed with exit 2 and exactly one stderr line; return it."""
        assert self.rc == 2, (self.rc, self.out, self.err)
        lines = self.err.splitlines()
        assert len(lines) == 1, self.err
        assert lines[0].startswith(PREFIX), lines[0]
        assert "Traceback" not in self.err
        return lines[0][len(PREFIX) :]


@dataclass
class Env:
    db_url: str
    db_path: Path
    runtime: Path
    capsys: pytest.CaptureFixture[str]

    def run(self, *argv: str) -> Result:
        self.capsys.readouterr()
        rc = main(list(argv))
        out, err = self.capsys.readouterr()
        return Result(rc, out, err)

    def store(self) -> Store:
        return open_store(self.db_url)

    def environ(self) -> dict[str, str]:
        env = dict(os.environ)
        env["STATEMACHINE_DB"] = self.db_url
        env["STATEMACHINE_RUNTIME_DIR"] = str(self.runtime)
        env.pop("STATEMACHINE_FAULT_NO_DOORBELL", None)
        return env

    def spawn(self, *argv: str, script: Path = CLI, stdin: str | None = None) -> Result:
        proc = subprocess.run(
            [str(script), *argv],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.environ(),
            timeout=60,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def listen(self, machine: str) -> socket.socket:
        """A datagram socket where a running machine's doorbell would be."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(self.runtime / f"{machine}.sock"))
        sock.settimeout(5)
        return sock


@pytest.fixture
def env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Env]:
    db_path = tmp_path / "sm.db"
    open_store(f"sqlite:///{db_path}").close()  # an existing, empty database
    runtime = Path(tempfile.mkdtemp(prefix="smcli-"))  # short: socket paths are limited
    os.chmod(runtime, 0o700)
    monkeypatch.setenv("STATEMACHINE_DB", f"sqlite:///{db_path}")
    monkeypatch.setenv("STATEMACHINE_RUNTIME_DIR", str(runtime))
    monkeypatch.delenv("STATEMACHINE_FAULT_NO_DOORBELL", raising=False)
    try:
        yield Env(f"sqlite:///{db_path}", db_path, runtime, capsys)
    finally:
        shutil.rmtree(runtime, ignore_errors=True)


def job_count(env: Env) -> int:
    store = env.store()
    try:
        return sum(store.count_jobs().values())
    finally:
        store.close()


# add-job


def test_add_job_prints_the_id_and_stores_the_job(env: Env) -> None:
    result = env.run("add-job", "J1", "--type", "t", "--payload", '{"a": 1}')
    assert (result.rc, result.out, result.err) == (0, "J1\n", "")
    shown = env.run("show-job", "J1", "--json")
    job = json.loads(shown.out)
    assert job["data"] == {"a": 1}
    assert (job["job_type"], job["status"], job["priority"], job["max_attempts"]) == (
        "t",
        "pending",
        5,
        3,
    )


def test_add_job_generates_an_id_and_honours_options(env: Env) -> None:
    before = time.time()
    flags = "--type t --machine-type m --priority 1 --max-attempts 7 --delay 60 --json"
    result = env.run("add-job", *flags.split(), "--data", "[1, 2]")
    assert result.rc == 0, result.err
    job = json.loads(result.out)
    assert job["created"] is True
    assert job["job_id"]
    assert (job["machine_type"], job["priority"], job["max_attempts"]) == ("m", 1, 7)
    assert job["data"] == [1, 2]
    assert job["run_after"] >= before + 60


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), None),
        (("--payload", "null"), None),
        (("--payload", "[]"), []),
        (("--payload", '"str"'), "str"),
        (("--payload", "0"), 0),
        (("--data", '{"k": {"n": [true]}}'), {"k": {"n": [True]}}),
    ],
)
def test_add_job_payload_shapes_store_and_claim(
    env: Env, args: tuple[str, ...], expected: object
) -> None:
    assert env.run("add-job", "J", "--type", "t", *args).rc == 0
    store = env.store()
    try:
        job = store.claim_job("t", "worker@test")
        assert job is not None
        assert job.data == expected
        assert job.as_context()["data"] == expected
        assert store.complete_job(job.job_id, "worker@test")
        assert store.count_jobs()["processing"] == 0
    finally:
        store.close()


@pytest.mark.parametrize("text", ["{x", "{'a': 1}", "", "NaN", "[1,", "undefined"])
def test_add_job_invalid_json_is_one_line_and_adds_nothing(env: Env, text: str) -> None:
    message = env.run("add-job", "J", "--type", "t", "--payload", text).one_error_line()
    assert message.startswith("--payload is not valid JSON")
    assert job_count(env) == 0


def test_add_job_payload_over_the_limit_is_refused(env: Env) -> None:
    big = json.dumps({"blob": "x" * (2 * 1024 * 1024)})
    message = env.run("add-job", "J", "--type", "t", "--payload", big).one_error_line()
    assert "bytes" in message and "limit" in message
    assert job_count(env) == 0


def test_add_job_payload_from_file_and_stdin(
    env: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "p.json").write_text('{"from": "file"}')
    assert env.run("add-job", "F", "--type", "t", "--payload", f"@{tmp_path / 'p.json'}").rc == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO('["stdin"]'))
    assert env.run("add-job", "S", "--type", "t", "--data", "@-").rc == 0
    assert json.loads(env.run("show-job", "F", "--json").out)["data"] == {"from": "file"}
    assert json.loads(env.run("show-job", "S", "--json").out)["data"] == ["stdin"]
    missing = env.run("add-job", "M", "--type", "t", "--payload", "@/nonexistent/p.json")
    assert "cannot read --payload from /nonexistent/p.json" in missing.one_error_line()


def test_add_job_duplicate_id_fails_and_if_absent_succeeds(env: Env) -> None:
    assert env.run("add-job", "J1", "--type", "t", "--payload", '{"v": 1}').rc == 0
    message = env.run("add-job", "J1", "--type", "t", "--payload", '{"v": 2}').one_error_line()
    assert message == (
        "job 'J1' already exists (use --if-absent to accept an existing job, or choose another id)"
    )
    again = env.run("add-job", "J1", "--type", "t", "--payload", '{"v": 3}', "--if-absent")
    assert (again.rc, again.out) == (0, "J1\n")
    assert "already exists" in again.err
    as_json = env.run("add-job", "J1", "--type", "t", "--if-absent", "--json")
    assert json.loads(as_json.out)["created"] is False
    assert json.loads(env.run("show-job", "J1", "--json").out)["data"] == {"v": 1}
    assert job_count(env) == 1


def test_add_job_rings_running_machines(env: Env) -> None:
    with env.listen("worker") as sock:
        assert env.run("add-job", "--type", "resize").rc == 0
        assert json.loads(sock.recv(4096)) == {"kind": "job", "job_type": "resize"}


# list-jobs, show-job, retry-job, cancel-job


def test_list_jobs_table_footer_filters_and_alias(env: Env) -> None:
    for job_id, job_type in [("A", "t"), ("B", "t"), ("C", "u")]:
        assert env.run("add-job", job_id, "--type", job_type).rc == 0
    assert env.run("cancel-job", "C").rc == 0
    result = env.run("list-jobs")
    lines = result.out.splitlines()
    assert lines[0].split() == ["ID", "TYPE", "STATUS", "PRIORITY", "ATTEMPTS", "CREATED"]
    assert {line.split()[0] for line in lines[1:4]} == {"A", "B", "C"}
    column = lines[0].index("STATUS")
    assert sorted(line[column:].split()[0] for line in lines[1:4]) == [
        "cancelled",
        "pending",
        "pending",
    ]
    assert lines[-1] == (
        "3 shown; 3 jobs: pending 2, processing 0, completed 0, failed 0, cancelled 1"
    )
    assert env.run("list", "--status", "cancelled").out.splitlines()[1].split()[0] == "C"
    typed = env.run("list", "--type", "t", "--json")
    assert sorted(j["job_id"] for j in json.loads(typed.out)) == ["A", "B"]
    paged = json.loads(env.run("list-jobs", "--limit", "1", "--offset", "1", "--json").out)
    assert len(paged) == 1
    assert env.run("list", "--type", "none").out.splitlines()[0] == "no jobs match"


def test_show_job_text_and_unknown_id(env: Env) -> None:
    env.run("add-job", "J1", "--type", "t", "--payload", '{"a": [1]}')
    text = env.run("show-job", "J1").out
    for field in ("job_id:", "job_type:", "status:", "attempts:", "created_at:", "errors:"):
        assert field in text
    assert 'data:             {"a":[1]}' in text
    assert env.run("show-job", "nope").one_error_line() == "no job 'nope'"


def test_cancel_and_retry_with_clear_errors(env: Env) -> None:
    env.run("add-job", "J1", "--type", "t")
    message = env.run("retry-job", "J1").one_error_line()
    assert message == "job 'J1' is pending; only failed or cancelled jobs can be retried"
    assert env.run("cancel-job", "J1").out == "job 'J1' cancelled\n"
    message = env.run("cancel-job", "J1").one_error_line()
    assert message == "job 'J1' is cancelled; only pending jobs can be cancelled"
    assert "pending again" in env.run("retry-job", "J1").out
    assert json.loads(env.run("show-job", "J1", "--json").out)["status"] == "pending"
    assert env.run("retry-job", "X").one_error_line() == "no job 'X'"
    assert env.run("cancel-job", "X").one_error_line() == "no job 'X'"


def test_reset_processing_releases_stuck_jobs(env: Env) -> None:
    for job_id, job_type in [("A", "a"), ("B", "b"), ("C", "a")]:
        env.run("add-job", job_id, "--type", job_type)
    store = env.store()
    try:
        # Leases that have run out: their workers are stuck or gone.
        assert store.claim_job("a", "dead@1", job_id="A", lease_seconds=-1) is not None
        assert store.claim_job("b", "dead@2", lease_seconds=-1) is not None
        assert env.run("reset-processing", "--type", "b").out == (
            "released 1 processing job(s) of type 'b' back to pending\n"
        )
        assert store.get_job("B").status == "pending"  # type: ignore[union-attr]
        assert store.get_job("A").status == "processing"  # type: ignore[union-attr]
        assert env.run("reset-processing").out == ("released 1 processing job(s) back to pending\n")
        job = store.get_job("A")
        assert job is not None and (job.status, job.attempts) == ("pending", 0)
    finally:
        store.close()


def test_prune_deletes_old_finished_jobs_only(env: Env) -> None:
    for job_id in ("old", "kept"):
        env.run("add-job", job_id, "--type", "t")
    store = env.store()
    try:
        assert store.claim_job("t", "w@h:1", job_id="old") is not None
        assert store.complete_job("old", "w@h:1")
        result = env.run("prune", "--older-than", "1d")
        assert result.rc == 0 and result.out.startswith("jobs 0,")  # nothing is a day old
        assert env.run("prune", "--older-than", "0.000001s").out.startswith("jobs 1,")
        assert store.get_job("old") is None and store.get_job("kept") is not None
    finally:
        store.close()


@pytest.mark.parametrize("value", ["soon", "0", "-1d", "7y", "7", "0d", "1.5"])
def test_prune_refuses_a_bad_duration(env: Env, value: str) -> None:
    result = env.run("prune", "--older-than", value)
    assert "--older-than" in result.one_error_line()


# send-event


def test_send_event_to_a_machine_that_is_not_running(env: Env) -> None:
    flags = "--target worker --type go --source cli --job-id J1"
    result = env.run("send-event", *flags.split(), "--payload", '{"n": 1}')
    assert result.rc == 0
    assert "not running and will receive the event when it starts" in result.out
    store = env.store()
    try:
        event = store.next_event("worker")
    finally:
        store.close()
    assert event is not None
    assert (event.event_type, event.payload, event.status) == ("go", {"n": 1}, "pending")
    assert (event.source_machine, event.job_id) == ("cli", "J1")
    as_json = json.loads(env.run("send-event", "--target", "worker", "--type", "x", "--json").out)
    assert as_json["woken"] is False and as_json["payload"] is None


def test_send_event_wakes_a_running_machine(env: Env) -> None:
    with env.listen("worker") as sock:
        result = env.run("send-event", "--target", "worker", "--type", "go")
        assert result.rc == 0 and "machine woken" in result.out
        assert json.loads(sock.recv(4096)) == {"kind": "event"}


def test_send_event_to_several_targets_in_one_go(env: Env) -> None:
    with env.listen("b") as sock:
        flags = "--target a --target b --target a --type go --json"
        sent = json.loads(env.run("send-event", *flags.split()).out)
        assert json.loads(sock.recv(4096)) == {"kind": "event"}
    assert [(e["target_machine"], e["woken"]) for e in sent] == [("a", False), ("b", True)]
    store = env.store()
    try:
        pending = {t: store.next_event(t) for t in ("a", "b")}
    finally:
        store.close()
    assert all(e is not None and e.event_type == "go" for e in pending.values())
    message = env.run("send-event", "--target", "a", "--target", "../x", "--type", "go")
    assert "invalid machine name" in message.one_error_line()


def test_send_event_rejects_bad_input_before_storing(env: Env) -> None:
    message = env.run("send-event", "--target", "../etc", "--type", "go").one_error_line()
    assert "invalid machine name" in message
    env.run("send-event", "--target", "w", "--type", "go", "--payload", "{").one_error_line()
    store = env.store()
    try:
        assert store.list_events() == []
    finally:
        store.close()


# machine-status and history


def register(store: Store, name: str, pid: int) -> None:
    store.register_machine(
        name,
        "idle",
        pid=pid,
        hostname=socket.gethostname(),
        config_path="w.yaml",
        definition_name="w",
        definition_hash=f"h-{name}",
        definition_text="{}",
        at=time.time(),
    )


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_machine_status_table_json_aliases_and_stale_rows(env: Env) -> None:
    store = env.store()
    try:
        register(store, "alive", os.getpid())
        register(store, "crashed", dead_pid())
        register(store, "done", os.getpid())
        store.machine_stopped("done", "stopped", time.time())
    finally:
        store.close()
    result = env.run("machine-status")
    rows = {line.split()[0]: line.split() for line in result.out.splitlines()[1:4]}
    assert result.out.splitlines()[0].split() == ["NAME", "STATE", "STATUS", "PID", "SINCE", "JOB"]
    assert rows["alive"][2] == "running"
    assert rows["crashed"][2] == "stale"
    assert rows["done"][2] == "stopped"
    assert result.out.splitlines()[-1].startswith("stale: recorded as running")
    for alias in ("status", "machine-state"):
        assert env.run(alias).out == result.out
    one = json.loads(env.run("machine-status", "crashed", "--json").out)
    assert (one["machine_name"], one["alive"], one["current_state"]) == ("crashed", False, "idle")
    listed = json.loads(env.run("status", "--json").out)
    assert [m["machine_name"] for m in listed] == ["alive", "crashed", "done"]
    message = env.run("machine-status", "ghost").one_error_line()
    assert message == "no machine 'ghost' has run against this database"


def test_machine_status_with_no_machines(env: Env) -> None:
    assert "no machines" in env.run("machine-status").out
    assert json.loads(env.run("machine-status", "--json").out) == []


def test_history_oldest_first_with_filters_and_alias(env: Env) -> None:
    store = env.store()
    try:
        for name in ("w1", "w2"):
            register(store, name, os.getpid())
        for i, (frm, to) in enumerate([("idle", "busy"), ("busy", "idle"), ("idle", "busy")]):
            store.commit_step(Step("w1", time.time(), i + 1, frm, to, f"e{i}"))
        store.commit_step(Step("w2", time.time(), 1, "idle", "done", "finish"))
    finally:
        store.close()
    records = json.loads(env.run("history", "--machine", "w1", "--json").out)
    assert [r["event"] for r in records] == ["e0", "e1", "e2"]
    last_two = json.loads(env.run("transition-history", "--limit", "2", "--json").out)
    assert [r["event"] for r in last_two] == ["e2", "finish"]
    text = env.run("history").out.splitlines()
    assert text[0].split() == ["TIME", "MACHINE", "STEP", "FROM", "TO", "EVENT", "JOB"]
    assert len(text) == 5
    assert env.run("history", "--machine", "nobody").out == "no transitions recorded\n"


def test_list_events_and_history_show_an_event_delivered_again_after_a_crash(env: Env) -> None:
    store = env.store()
    try:
        register(store, "w", os.getpid())
        go = store.send_event("w", "go", {"n": 1}, source="cli")
        store.send_event("w", "later")
        for step in (1, 2):
            store.commit_step(
                Step(
                    "w",
                    time.time(),
                    step,
                    "idle",
                    "busy",
                    "go",
                    consumed_event_id=go.id,
                    consumed_event_status="handling",
                )
            )
            if step == 1:
                store.recover_events("w", "machine w (pid 1 on h) died while handling it")
    finally:
        store.close()
    text = env.run("list-events", "--target", "w").out.splitlines()
    assert text[0].split() == [
        "ID",
        "TARGET",
        "EVENT",
        "STATUS",
        "DELIVERIES",
        "SOURCE",
        "CREATED",
        "NOTE",
    ]
    later_row, go_row = text[1], text[2]
    assert "later" in later_row and "pending" in later_row
    assert "handling" in go_row and "interrupted: machine w (pid 1 on h) died" in go_row
    events = json.loads(env.run("events", "--status", "handling", "--json").out)
    assert [(e["id"], e["deliveries"]) for e in events] == [(go.id, 2)]
    assert env.run("list-events", "--target", "nobody").out == "no events match\n"
    history = env.run("history", "--machine", "w").out.splitlines()
    assert f"go #{go.id}, delivery 2" in history[2] and "delivery" not in history[1]
    records = json.loads(env.run("history", "--json").out)
    assert [r["event_delivery"] for r in records] == [1, 2]


# arguments, options and errors


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], "missing command"),
        (["frob"], "invalid choice: 'frob'"),
        (["add-job"], "add-job: the following arguments are required: --type"),
        (["add-job", "--type", "t", "--priority", "-1"], "expected a non-negative integer"),
        (["add-job", "--type", ""], "add-job: argument --type/--job-type: must not be empty"),
        (["add-job", "--type", "t", "--max-attempts", "0"], "expected a positive integer"),
        (["add-job", "--type", "t", "--delay", "nan"], "expected a non-negative number"),
        (["add-job", "--type", "t", "--payload", "1", "--data", "2"], "not allowed with"),
        (["list-jobs", "--limit", "x"], "list-jobs: argument --limit: expected a positive"),
        (["list-jobs", "--limit", "0"], "expected a positive integer, got '0'"),
        (["list-jobs", "--offset", "-3"], "expected a non-negative integer"),
        (["history", "--limit", "1.5"], "expected a positive integer, got '1.5'"),
        (["list-jobs", "--status", "bogus"], "invalid choice: 'bogus'"),
        (["list-jobs", "extra"], "unrecognized arguments: extra"),
        (["send-event", "--type", "x"], "the following arguments are required: --target"),
        (["show-job"], "the following arguments are required: JOB_ID"),
        (["--log-level", "loud", "list"], "invalid choice: 'LOUD'"),
        (["--db", "postgresql://127.0.0.1:1/db", "list"], "cannot connect to PostgreSQL at"),
        (["--db", "mysql://h/db", "list"], "unsupported database URL scheme 'mysql'"),
    ],
)
def test_bad_arguments_are_one_line_exit_2(env: Env, argv: list[str], expected: str) -> None:
    result = env.run(*argv)
    assert expected in result.one_error_line()
    assert result.out == ""


def test_debug_shows_the_traceback(env: Env) -> None:
    result = env.run("--debug", "show-job", "nope")
    assert result.rc == 2
    assert "Traceback" in result.err
    assert result.err.splitlines()[-1] == PREFIX + "no job 'nope'"


def test_global_options_work_after_the_command(env: Env, tmp_path: Path) -> None:
    other = f"sqlite:///{tmp_path / 'other.db'}"
    assert env.run("add-job", "O", "--type", "t", "--db", other).rc == 0
    assert env.run("show-job", "O").rc == 2
    assert env.run("--db", other, "show-job", "O").rc == 0
    assert env.run("show-job", "O", "--db", other, "--log-level", "debug").rc == 0


def test_log_json_writes_one_object_per_line(env: Env) -> None:
    result = env.run("add-job", "--type", "t", "--log-level", "DEBUG", "--log-json")
    assert result.rc == 0
    records = [json.loads(line) for line in result.err.splitlines()]
    assert any(r["message"].startswith("doorbell rung") for r in records)
    assert all({"time", "level", "logger", "message"} <= r.keys() for r in records)


def test_json_formatter_keeps_extra_fields() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello %s", ("w",), None)
    record.machine = "w1"
    line = json.loads(JsonLineFormatter().format(record))
    assert (line["message"], line["machine"], line["level"]) == ("hello w", "w1", "info")


def test_deeply_nested_json_is_one_line(env: Env) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    message = env.run("add-job", "--type", "t", "--payload", deep).one_error_line()
    assert message == "--payload is nested too deeply"


def test_unexpected_errors_exit_1_with_a_hint(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("statemachine_engine.database.sqlite.SQLiteStore.list_jobs", boom)
    result = env.run("list-jobs")
    assert result.rc == 1
    assert result.err == (
        PREFIX + "unexpected RuntimeError: disk on fire (rerun with --debug for a traceback)\n"
    )


@pytest.mark.parametrize(
    ("exc", "rc", "err"),
    [
        (KeyboardInterrupt(), 130, PREFIX + "interrupted\n"),
        (BrokenPipeError(), 1, ""),
    ],
)
def test_run_cli_interrupt_and_closed_pipe(
    capsys: pytest.CaptureFixture[str], exc: BaseException, rc: int, err: str
) -> None:
    def main_fn(argv: list[str]) -> int:
        raise exc

    assert run_cli(main_fn, []) == rc
    assert capsys.readouterr().err == err


def test_version(env: Env) -> None:
    with pytest.raises(SystemExit) as exit_info:
        env.run("--version")
    assert exit_info.value.code == 0


# the installed console scripts


def test_console_script_happy_path(env: Env) -> None:
    added = env.spawn("add-job", "J1", "--type", "t", "--payload", '{"a": 1}')
    assert (added.rc, added.out, added.err) == (0, "J1\n", "")
    listed = env.spawn("list")
    assert listed.rc == 0 and "J1" in listed.out
    sent = env.spawn("send-event", "--target", "worker", "--type", "go")
    assert sent.rc == 0 and "not running" in sent.out


@pytest.mark.parametrize(
    "argv",
    [
        ["frob"],
        ["add-job", "--payload", "{}"],
        ["add-job", "--type", "t", "--payload", "{bad"],
        ["list-jobs", "--limit", "ten"],
        ["show-job", "missing"],
    ],
)
def test_console_script_errors_are_one_line(env: Env, argv: list[str]) -> None:
    env.spawn(*argv).one_error_line()


def test_console_script_two_mib_payload_through_stdin(env: Env) -> None:
    big = json.dumps(["y" * (2 * 1024 * 1024)])
    result = env.spawn("add-job", "J", "--type", "t", "--payload", "@-", stdin=big)
    assert "more than the limit" in result.one_error_line()


def test_statemachine_db_alias_names_itself(env: Env) -> None:
    result = env.spawn("nope", script=DB_ALIAS)
    assert result.rc == 2
    assert result.err.startswith("statemachine-db: error: ")
    assert len(result.err.splitlines()) == 1
    assert env.spawn("add-job", "J2", "--type", "t", script=DB_ALIAS).out == "J2\n"


def add_concurrently(env: Env, *extra: str) -> list[Result]:
    procs = [
        subprocess.Popen(
            [str(CLI), "add-job", "J1", "--type", "t", "--payload", json.dumps({"n": n}), *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env.environ(),
        )
        for n in (1, 2)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        results.append(Result(proc.returncode, out, err))
    return results


def test_concurrent_add_job_creates_one_row(env: Env) -> None:
    assert env.run("list-jobs").rc == 0  # an existing database, so only the inserts race
    first, second = add_concurrently(env)
    assert sorted([first.rc, second.rc]) == [0, 2]
    winner, loser = (first, second) if first.rc == 0 else (second, first)
    assert "already exists" in loser.one_error_line()
    assert job_count(env) == 1
    data = json.loads(env.run("show-job", "J1", "--json").out)["data"]
    assert data == {"n": 1 if winner is first else 2}


def test_concurrent_add_job_if_absent_both_succeed(env: Env) -> None:
    assert env.run("list-jobs").rc == 0
    results = add_concurrently(env, "--if-absent")
    assert [r.rc for r in results] == [0, 0], [r.err for r in results]
    assert [r.out for r in results] == ["J1\n", "J1\n"]
    assert sum("already exists" in r.err for r in results) == 1
    assert job_count(env) == 1


# a database that is not there, unbounded inputs


READ_ONLY_COMMANDS = [
    ("list-jobs",),
    ("show-job", "J"),
    ("machine-status",),
    ("history",),
    ("list-events",),
    ("retry-job", "J"),
    ("cancel-job", "J"),
    ("reset-processing",),
    ("prune", "--older-than", "1d"),
    ("backup", "/nonexistent-dir/b.db"),
    ("mark-stopped", "w"),
]


@pytest.mark.parametrize("argv", READ_ONLY_COMMANDS, ids=lambda argv: argv[0])
def test_commands_on_a_missing_database_refuse_and_create_nothing(
    env: Env, tmp_path: Path, argv: tuple[str, ...]
) -> None:
    missing = tmp_path / "typo" / "sub" / "sm.db"
    message = env.run("--db", f"sqlite:///{missing}", *argv).one_error_line()
    assert message == f"no database at {missing} (check --db or STATEMACHINE_DB)"
    assert not (tmp_path / "typo").exists()
    message = env.run("--db", f"sqlite:///{tmp_path / 'nope.db'}", *argv).one_error_line()
    assert message.startswith("no database at ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sm.db"]


def test_writing_commands_say_once_that_they_created_the_database(env: Env, tmp_path: Path) -> None:
    fresh = tmp_path / "new" / "fresh.db"
    url = f"sqlite:///{fresh}"
    first = env.run("--db", url, "add-job", "J1", "--type", "t")
    assert (first.rc, first.out, first.err) == (0, "J1\n", f"created a new database at {fresh}\n")
    second = env.run("--db", url, "add-job", "J2", "--type", "t")
    assert (second.rc, second.err) == (0, "")
    other = tmp_path / "events.db"
    sent = env.run("--db", f"sqlite:///{other}", "send-event", "--target", "w", "--type", "go")
    assert sent.rc == 0 and sent.err == f"created a new database at {other}\n"


@pytest.mark.timeout(30)
def test_payload_from_dev_zero_is_refused_after_the_limit(env: Env) -> None:
    result = env.spawn("add-job", "J", "--type", "t", "--payload", "@/dev/zero")
    assert result.one_error_line() == (
        "--payload from /dev/zero is more than the limit of 1048576 bytes"
    )
    assert job_count(env) == 0


@pytest.mark.timeout(30)
def test_an_endless_stdin_pipe_is_refused_after_the_limit(env: Env) -> None:
    yes = subprocess.Popen(["yes"], stdout=subprocess.PIPE)
    try:
        proc = subprocess.run(
            [str(CLI), "add-job", "J", "--type", "t", "--payload", "@-"],
            stdin=yes.stdout,
            capture_output=True,
            text=True,
            env=env.environ(),
            timeout=20,
        )
    finally:
        yes.kill()
        yes.wait()
    result = Result(proc.returncode, proc.stdout, proc.stderr)
    assert result.one_error_line() == "--payload from stdin is more than the limit of 1048576 bytes"


@pytest.mark.timeout(30)
def test_an_endless_fifo_payload_is_refused_after_the_limit(env: Env, tmp_path: Path) -> None:
    fifo = tmp_path / "payload.fifo"
    os.mkfifo(fifo)
    writer = subprocess.Popen(["sh", "-c", f"yes > {fifo}"])
    try:
        result = env.spawn("add-job", "J", "--type", "t", "--data", f"@{fifo}")
    finally:
        writer.kill()
        writer.wait()
    assert result.one_error_line() == f"--data from {fifo} is more than the limit of 1048576 bytes"
