"""Release artifacts built once per session: the wheel and sdist, and a clean venv outside
the repository with the wheel and its real dependencies installed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("dist")
    # Built the standard way, each on its own, as a release would.
    for kind in ("--wheel", "--sdist"):
        subprocess.run(
            [sys.executable, "-m", "build", kind, "--outdir", str(out), str(ROOT)],
            check=True,
            capture_output=True,
            timeout=180,
        )
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return {"wheel": wheel, "sdist": sdist}


@pytest.fixture(scope="session")
def venv(tmp_path_factory: pytest.TempPathFactory, dists: dict[str, Path]) -> Path:
    home = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run([sys.executable, "-m", "venv", str(home)], check=True, timeout=120)
    subprocess.run(
        [
            str(home / "bin/python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            str(dists["wheel"]),
        ],
        check=True,
        timeout=300,
    )
    return home
