"""The released 1.0 Python API keeps working through thin shims that warn: the engine built in
two steps, the model accessors, `core.action_loader`, and the package-level imports. The
names and parameters checked are read from the released sdist."""

from __future__ import annotations

import ast
import asyncio
import importlib
import inspect
from collections.abc import Iterator
from pathlib import Path

import pytest

import statemachine_engine
from statemachine_engine.compat import models as compat_models
from statemachine_engine.compat.engine import ReleasedEngine
from statemachine_engine.core import ActionLoader as CoreActionLoader
from statemachine_engine.core.engine import StateMachineEngine
from statemachine_engine.database import Database, JobModel, open_store

MACHINE = """\
metadata: {machine_name: from-file}
initial_state: working
states: [working, finished]
actions:
  working: [{type: mark}]
transitions:
  - {from: working, to: finished, event: done}
"""

MARK = """\
from statemachine_engine.actions import BaseAction


class MarkAction(BaseAction):
    async def execute(self, context):
        context["seen"] = context.get("greeting")
        return "done"
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A 1.0-style project: a machine file, a custom action, the database from the env."""
    (tmp_path / "custom").mkdir()
    (tmp_path / "custom" / "mark_action.py").write_text(MARK)
    (tmp_path / "worker.yaml").write_text(MACHINE)
    monkeypatch.setenv("STATEMACHINE_DB", f"sqlite:///{tmp_path / 'sm.db'}")
    yield tmp_path
    compat_models.close_database()


def _released_functions(path: Path, owner: str | None = None) -> dict[str, list[str]]:
    """Public functions (of class `owner`, else at module level) → parameter names."""
    tree = ast.parse(path.read_text())
    body = tree.body
    if owner is not None:
        (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == owner]
        body = cls.body
    return {
        node.name: [a.arg for a in node.args.args + node.args.kwonlyargs if a.arg != "self"]
        for node in body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and (node.name == "__init__" or not node.name.startswith("_"))
    }


def _accepts(ours: object, names: list[str]) -> bool:
    params = inspect.signature(ours).parameters  # type: ignore[arg-type]
    return all(name in params for name in names)


async def test_engine_in_two_steps_runs_a_machine(project: Path) -> None:
    with pytest.warns(DeprecationWarning, match="1.0 API"):
        engine = StateMachineEngine(machine_name="w1", actions_root=str(project / "custom"))
    assert isinstance(engine, ReleasedEngine)
    assert isinstance(engine, StateMachineEngine)
    assert engine.current_state is None
    await engine.load_config(str(project / "worker.yaml"))
    assert (engine.machine_name, engine.current_state) == ("w1", "working")
    assert engine.config_name == "worker"
    code = await asyncio.wait_for(engine.execute_state_machine({"greeting": "hello"}), 60)
    assert code == 0
    assert engine.current_state == "finished"
    assert engine.context["seen"] == "hello"
    store = open_store(f"sqlite:///{project / 'sm.db'}")
    try:
        moves = [(t.from_state, t.to_state) for t in store.history(machine="w1")]
    finally:
        store.close()
    assert ("working", "finished") in moves


async def test_engine_in_two_steps_refuses_what_1_0_refused(project: Path) -> None:
    with pytest.warns(DeprecationWarning):
        engine = StateMachineEngine("named-positionally")
    with pytest.raises(RuntimeError, match="load_config"):
        await engine.execute_state_machine()
    with pytest.raises(FileNotFoundError, match=r"nope\.yaml"):
        await engine.load_config(str(project / "nope.yaml"))


def test_released_engine_signatures_are_accepted(released: Path) -> None:
    methods = _released_functions(
        released / "src/statemachine_engine/core/engine.py", "StateMachineEngine"
    )
    for name in ("__init__", "load_config", "execute_state_machine"):
        assert _accepts(getattr(ReleasedEngine, name), methods[name]), name


def test_model_accessors(project: Path, released: Path) -> None:
    accessors = _released_functions(
        released / "src/statemachine_engine/database/models/__init__.py"
    )
    assert {"get_database", "get_job_model", "get_machine_state_model"} <= set(accessors)
    models = importlib.import_module("statemachine_engine.database.models")
    for name in accessors:
        with pytest.warns(DeprecationWarning, match="1.0 API"):
            getattr(models, name)()
    with pytest.warns(DeprecationWarning):
        jobs = models.get_job_model()
    with pytest.warns(DeprecationWarning):
        db = models.get_database()
    assert isinstance(jobs, JobModel) and isinstance(db, Database)
    assert db.url == f"sqlite:///{project / 'sm.db'}"
    # 1.0's keywords still mean what they meant.
    jobs.create_job(job_id="j1", job_type="render", data={"x": 1}, machine_type="gpu")
    job = jobs.get_job("j1")
    assert job is not None
    assert (job["job_type"], job["data"], job["machine_type"]) == ("render", {"x": 1}, "gpu")


def test_create_job_refuses_the_released_positional_order(project: Path) -> None:
    with Database(f"sqlite:///{project / 'sm.db'}") as db:
        jobs = JobModel(db)
        with pytest.raises(TypeError, match=r"create_job\(job_id, job_type"):
            jobs.create_job("job-1", "render")  # 1.0: id, type. 2.0 would read type, data.
        assert sum(jobs.count_by_status().values()) == 0, "nothing was created"
        assert jobs.get_job("job-1") is None
        assert jobs.create_job("render", job_id="job-1") == "job-1"
        created = jobs.get_job("job-1")
        assert created is not None and created["job_type"] == "render"


def test_action_loader_module(project: Path, released: Path) -> None:
    from statemachine_engine.core import action_loader

    path = released / "src/statemachine_engine/core/action_loader.py"
    methods = _released_functions(path, "ActionLoader")
    functions = _released_functions(path)
    assert {"load_action_class", "get_available_actions"} <= set(methods)
    for name, params in methods.items():
        assert _accepts(getattr(action_loader.ActionLoader, name), params), name
    for name, params in functions.items():
        assert _accepts(getattr(action_loader, name), params), name

    with pytest.warns(DeprecationWarning, match="1.0 API"):
        loader = action_loader.ActionLoader(str(project / "custom"))
    mark = loader.load_action_class("mark")
    assert mark is not None and mark.__name__ == "MarkAction"
    assert loader.load_action_class("no_such_action") is None
    assert {"mark", "log", "bash"} <= set(loader.get_available_actions())
    loader.rediscover()
    with pytest.warns(DeprecationWarning):
        assert action_loader.load_action_class("log") is not None


def test_a_single_directory_is_not_split_into_letters(project: Path) -> None:
    loader = CoreActionLoader(str(project / "custom"))  # type: ignore[arg-type]
    assert loader.actions_dirs == ((project / "custom").resolve(),)
    assert "mark" in loader.names()


def test_package_level_imports_of_1_0(released: Path) -> None:
    init = (released / "src/statemachine_engine/__init__.py").read_text()
    exported = ast.literal_eval(init.split("__all__ = ", 1)[1].split("\n]", 1)[0] + "\n]")
    assert "StateMachineEngine" in exported
    for name in exported:
        assert getattr(statemachine_engine, name) is not None, name
    assert statemachine_engine.StateMachineEngine is StateMachineEngine
    assert statemachine_engine.JobModel is JobModel
    with pytest.raises(AttributeError):
        _ = statemachine_engine.NoSuchThing
