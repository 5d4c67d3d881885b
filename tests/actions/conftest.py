"""Fixtures for action tests: a real Runtime on a SQLite store in tmp_path, a virtual clock,
and actions built from YAML through the real loader (`until` comes from tests/conftest.py)."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any

import pytest

from statemachine_engine.actions.base import BaseAction
from statemachine_engine.clock import VirtualClock
from statemachine_engine.config import parse_definition
from statemachine_engine.core.groupcommit import GroupCommit
from statemachine_engine.core.jobpolicy import JobPolicy
from statemachine_engine.core.loader import ActionLoader
from statemachine_engine.core.runtime import Runtime
from statemachine_engine.database import open_store
from statemachine_engine.database.store import Store

MACHINE = """
name: test machine
initial_state: idle
metadata: {machine_name: worker, job_type: task}
states: [idle, busy]
events: [go]
transitions:
  - {from: idle, to: busy, event: go}
  - {from: busy, to: idle, event: go}
"""


class CountingClock(VirtualClock):
    """A virtual clock that counts sleepers (`sleeping`) and sleep calls (`calls`), so tests
    can wait until an action sleeps."""

    def __init__(self) -> None:
        super().__init__()
        self.sleeping = 0
        self.calls = 0

    async def sleep(self, seconds: float) -> None:
        self.sleeping += 1
        self.calls += 1
        try:
            await super().sleep(seconds)
        finally:
            self.sleeping -= 1


def process_alive(pid: int) -> bool:
    """True while `pid` runs; a zombie or a missing process counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


@pytest.fixture
def alive() -> Callable[[int], bool]:
    return process_alive


@pytest.fixture
def clock() -> CountingClock:
    return CountingClock()


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'machines.db'}"


@pytest.fixture
def store(db_url: str, clock: CountingClock) -> Iterator[Store]:
    opened = open_store(db_url, clock=clock)
    yield opened
    opened.close()


RuntimeFactory = Callable[..., Runtime]


@pytest.fixture
def make_runtime(store: Store, clock: CountingClock, db_url: str, tmp_path: Path) -> RuntimeFactory:
    """Builds a Runtime for a machine definition given as YAML text."""

    def factory(yaml_text: str = MACHINE, machine_name: str = "worker", **extra: Any) -> Runtime:
        definition = parse_definition(textwrap.dedent(yaml_text), "x.yaml", ActionLoader())
        return Runtime(
            machine_name=machine_name,
            store=store,
            clock=clock,
            definition=definition,
            owner=f"{machine_name}@test:1",
            db_url=db_url,
            config_path=tmp_path / "x.yaml",
            policy=JobPolicy(definition.job_options),
            commits=GroupCommit(store),
            **extra,
        )

    return factory


@pytest.fixture
def runtime(make_runtime: RuntimeFactory) -> Runtime:
    return make_runtime()


ActionFactory = Callable[..., BaseAction]


@pytest.fixture
def make_action(runtime: Runtime) -> ActionFactory:
    """Builds one action from its YAML (as written under a state's `actions:`), bound to
    `runtime`; the YAML goes through the real definition parser and loader."""

    def factory(
        action_yaml: str, bound: Runtime | None = None, keys: Collection[str] = ()
    ) -> BaseAction:
        body = textwrap.indent(textwrap.dedent(action_yaml).strip(), "      ")
        text = MACHINE + "actions:\n  busy:\n    -\n" + body + "\n"
        loader = ActionLoader()
        definition = parse_definition(text, "x.yaml", loader, extra_context_keys=keys)
        action = loader.create(definition.entry_actions["busy"][0])
        action.runtime = bound or runtime
        return action

    return factory


@pytest.fixture
def context() -> dict[str, Any]:
    return {"machine_name": "worker", "current_state": "busy", "step_key": "worker:7"}
