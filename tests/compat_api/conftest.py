"""Fixtures for the released package's API: its sdist and a venv with it installed,
from tests/released.py (loaded by path: the tests run with --import-mode=importlib)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest


def _released_helpers() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "released.py"
    spec = importlib.util.spec_from_file_location("_tests_released", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def released() -> Path:
    """The unpacked sdist of statemachine-engine 1.0.91."""
    path: Path = _released_helpers().released_sdist()
    return path


@pytest.fixture(scope="session")
def released_bin() -> Path:
    """The bin directory of a venv with statemachine-engine 1.0.91 installed."""
    path: Path = _released_helpers().released_bin()
    return path
