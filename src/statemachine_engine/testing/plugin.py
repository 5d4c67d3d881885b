"""The pytest plugin (entry point `pytest11`): the `machine_harness` fixture."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from statemachine_engine.testing.harness import MachineHarness, PathLike


@pytest.fixture
def machine_harness(tmp_path: Path) -> Callable[..., MachineHarness]:
    """A factory of harnesses whose database lives in the test's `tmp_path`:
    `async with machine_harness("worker.yaml") as m: ...`."""

    def make(config: PathLike | None = None, **options: Any) -> MachineHarness:
        options.setdefault("tmp_path", tmp_path)
        return MachineHarness(config, **options)

    return make
