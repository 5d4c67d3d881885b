"""The peers' virtual environments: bench/.venv-<peer>, created or reused by the bench only."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent

# What `pip install` gets for each peer; the main package's version decides reuse.
PINS: dict[str, tuple[str, ...]] = {
    "pgqueuer": ("pgqueuer==1.6.0", "asyncpg==0.32.0"),
    "procrastinate": ("procrastinate==3.10.0",),
    "huey": ("huey==3.5.4",),
}


def venv_dir(peer: str) -> Path:
    return BENCH / f".venv-{peer}"


def pinned_version(peer: str) -> str:
    return PINS[peer][0].split("==", 1)[1]


def installed_version(peer: str) -> str | None:
    python = venv_dir(peer) / "bin" / "python"
    probe = f"import importlib.metadata as m; print(m.version({peer!r}))"
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        out = subprocess.run(
            [str(python), "-c", probe], capture_output=True, text=True, check=True
        ).stdout
        return out.strip()
    return None


def ensure(peer: str) -> Path:
    """Create or reuse bench/.venv-<peer> holding the pinned packages; its bin directory."""
    bindir = venv_dir(peer) / "bin"
    if installed_version(peer) == pinned_version(peer):
        return bindir
    print(f"installing {' '.join(PINS[peer])} into {venv_dir(peer)} ...", flush=True)
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--clear", str(venv_dir(peer))], check=True)
    pip = [str(bindir / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--disable-pip-version-check", *PINS[peer]], check=True)
    found = installed_version(peer)
    if found != pinned_version(peer):
        raise SystemExit(f"bench: {venv_dir(peer)} has {peer} {found!r}")
    return bindir
