"""Testing your own machines: MachineHarness runs them in-process on the real engine, with a
virtual clock and stubbed shell commands; the pytest plugin adds the `machine_harness`
fixture (`statemachine_engine.pytest_plugin`)."""

from __future__ import annotations

from statemachine_engine.testing.harness import BashStub, MachineHarness

__all__ = ["BashStub", "MachineHarness"]
