"""The pytest plugin (entry point `pytest11`): the `machine_harness` fixture. It imports the
engine only when a test uses the fixture, so loading the plugin costs nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from statemachine_engine.testing.harness import MachineHarness, PathLike


@pytest.fixture
def machine_harness(tmp_path: Path) -> Callable[..., MachineHarness]:
    """A factory of harnesses whose database lives in the test's `tmp_path`:
    `async with machine_harness("worker.yaml") as m: ...`."""
    # Here, not at the top: pytest loads this plugin in every session of any project.
    from statemachine_engine.testing.harness import MachineHarness

    def make(config: PathLike | None = None, **options: Any) -> MachineHarness:
        options.setdefault("tmp_path", tmp_path)
        return MachineHarness(config, **options)

    return make
