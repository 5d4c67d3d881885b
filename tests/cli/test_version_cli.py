"""`--version` on every console script: one line naming the distribution and its version,
exit 0, and no machine or system file needed."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import statemachine_engine

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SCRIPTS = sorted(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"])


def test_version_is_above_the_released_package() -> None:
    released = (1, 0, 91)
    ours = tuple(int(part) for part in statemachine_engine.__version__.split("."))
    assert ours >= (2, 0, 0) and ours > released  # else `pip install -U` keeps 1.0.91


@pytest.mark.parametrize("script", SCRIPTS)
def test_version_without_arguments(script: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [str(BIN / script), "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        f"statemachine-engine {statemachine_engine.__version__}\n",
        "",
    )


def test_statemachine_up_version(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(BIN / "statemachine"), "up", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    version = statemachine_engine.__version__
    assert (result.returncode, result.stdout) == (0, f"statemachine-engine {version}\n")
