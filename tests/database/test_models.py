"""The model facades of DESIGN §9 over a SQLite store on a virtual clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from statemachine_engine.clock import VirtualClock
from statemachine_engine.database import (
    Database,
    JobModel,
    MachineEventModel,
    MachineStateModel,
    RealtimeEventModel,
)
from statemachine_engine.database.records import JOB_STATUSES, Step
from statemachine_engine.errors import DuplicateJobError, StoreError


@pytest.fixture
def db(tmp_path: Path, clock: VirtualClock) -> Iterator[Database]:
    with Database(f"sqlite:///{tmp_path}/models.db", clock=clock) as database:
        yield database


class TestDatabase:
    def test_context_manager_opens_and_closes(self, tmp_path: Path) -> None:
        url = f"sqlite:///{tmp_path}/x.db"
        with Database(url) as db:
            assert db.url == url
            JobModel(db).create_job("render", job_id="J1")
        assert (tmp_path / "x.db").is_file()
        with Database(url) as again:
            assert JobModel(again).get_job("J1") is not None

    def test_close_on_error_inside_the_block(self, tmp_path: Path) -> None:
        url = f"sqlite:///{tmp_path}/x.db"
        with pytest.raises(RuntimeError), Database(url) as db:
            JobModel(db).create_job("render", job_id="J1")
            raise RuntimeError("boom")
        with Database(url) as again:
            assert JobModel(again).get_job("J1") is not None

    def test_default_url_from_the_environment(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("STATEMACHINE_DB", f"sqlite:///{tmp_path}/env.db")
        with Database() as db:
            assert db.url == f"sqlite:///{tmp_path}/env.db"
        assert (tmp_path / "env.db").is_file()

    def test_schema_dirs_are_applied(self, tmp_path: Path) -> None:
        domain = tmp_path / "faces"
        domain.mkdir()
        (domain / "001_faces.sql").write_text("CREATE TABLE faces (id INTEGER PRIMARY KEY);\n")
        with Database(f"sqlite:///{tmp_path}/x.db", schema_dirs=[domain]) as db:
            assert JobModel(db).count_by_status()["pending"] == 0
        with Database(f"sqlite:///{tmp_path}/x.db", schema_dirs=[domain]):
            pass

    def test_bad_url(self) -> None:
        with pytest.raises(StoreError, match="unsupported database URL scheme"):
            Database("mysql://db/x")


class TestJobModel:
    def test_create_and_get(self, db: Database, clock: VirtualClock) -> None:
        jobs = JobModel(db)
        job_id = jobs.create_job("render", data={"image": "a.png"}, machine_type="gpu", priority=2)
        job = jobs.get_job(job_id)
        assert job is not None
        assert job["job_id"] == job_id
        assert (job["job_type"], job["machine_type"], job["priority"]) == ("render", "gpu", 2)
        assert (job["data"], job["status"], job["created_at"]) == (
            {"image": "a.png"},
            "pending",
            clock.now(),
        )
        assert job["errors"] == []
        assert jobs.get_job("nope") is None

    def test_explicit_id_and_duplicates(self, db: Database) -> None:
        jobs = JobModel(db)
        assert jobs.create_job("render", job_id="J1") == "J1"
        with pytest.raises(DuplicateJobError):
            jobs.create_job("render", job_id="J1")

    def test_list_and_count(self, db: Database, clock: VirtualClock) -> None:
        jobs = JobModel(db)
        for n in range(5):
            jobs.create_job("render" if n < 3 else "describe", job_id=f"J{n}")
            clock.advance(1)
        db.store.claim_job("render", "w@h:1")
        assert [j["job_id"] for j in jobs.list_jobs()] == ["J4", "J3", "J2", "J1", "J0"]
        assert [j["job_id"] for j in jobs.list_jobs(job_type="describe")] == ["J4", "J3"]
        assert [j["job_id"] for j in jobs.list_jobs(status="processing")] == ["J0"]
        assert [j["job_id"] for j in jobs.list_jobs(limit=2)] == ["J4", "J3"]
        assert jobs.count_by_status() == {
            **dict.fromkeys(JOB_STATUSES, 0),
            "pending": 4,
            "processing": 1,
        }
        assert jobs.count_by_status("describe") == {**dict.fromkeys(JOB_STATUSES, 0), "pending": 2}


class TestMachineEventModel:
    def test_send_and_pending_oldest_first(self, db: Database) -> None:
        events = MachineEventModel(db)
        ids = [events.send_event("worker", f"e{n}", {"n": n}, source="cli") for n in range(3)]
        events.send_event("other", "x")
        assert ids == sorted(ids)
        pending = events.pending("worker")
        assert [e["id"] for e in pending] == ids
        assert [e["payload"] for e in pending] == [{"n": 0}, {"n": 1}, {"n": 2}]
        assert {e["source_machine"] for e in pending} == {"cli"}
        db.store.mark_event(ids[0], "processed")
        assert [e["id"] for e in events.pending("worker")] == ids[1:]
        assert events.pending("nobody") == []


class TestMachineStateModel:
    def test_get_list_history(self, db: Database) -> None:
        states = MachineStateModel(db)
        assert states.get("worker") is None
        assert states.list() == []
        for name in ("worker", "controller"):
            db.store.register_machine(
                name,
                "idle",
                pid=1,
                hostname="h",
                config_path=f"{name}.yaml",
                definition_name=name,
                definition_hash=f"h-{name}",
                definition_text="x",
                at=1.0,
            )
        db.store.commit_step(
            Step("worker", at=2.0, step=1, from_state="idle", to_state="busy", event="go")
        )
        worker = states.get("worker")
        assert worker is not None
        assert (worker["machine_name"], worker["current_state"], worker["status"]) == (
            "worker",
            "busy",
            "running",
        )
        assert [m["machine_name"] for m in states.list()] == ["controller", "worker"]
        [record] = states.history("worker")
        assert (record["from_state"], record["to_state"], record["event"]) == ("idle", "busy", "go")
        assert states.history("controller") == []
        assert len(states.history()) == 1


class TestRealtimeEventModel:
    def test_since(self, db: Database) -> None:
        stream = RealtimeEventModel(db)
        assert stream.since() == []
        db.store.add_realtime("worker", "activity", {"message": "hello"})
        JobModel(db).create_job("render", job_id="J1")
        rows = stream.since()
        assert [(r["kind"], r["machine_name"]) for r in rows] == [
            ("activity", "worker"),
            ("job", None),
        ]
        assert rows[0]["payload"] == {"message": "hello"}
        assert rows[1]["payload"]["job_id"] == "J1"
        assert stream.since(rows[0]["id"]) == rows[1:]
        assert stream.since(limit=1) == rows[:1]
