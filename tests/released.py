"""The released package (statemachine-engine 1.0.91), fetched at test time into a cache
outside the repository (never committed): its unpacked sdist, to read its files, and a
virtual environment with it installed, to run its commands (as bench/run.py does)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

RELEASE = "1.0.91"
BIN = Path(sys.executable).parent
DOWNLOAD = ("--no-deps", "--no-binary", ":all:", "-d")
INSTALL = ("-m", "pip", "install", "--quiet", "--disable-pip-version-check")


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "statemachine-engine-tests"
    return Path(os.environ.get("STATEMACHINE_TEST_CACHE", default))


@contextlib.contextmanager
def _cache_locked() -> Iterator[None]:
    """Held while the cache is filled: parallel test workers wait for one another."""
    cache_dir().mkdir(parents=True, exist_ok=True)
    with (cache_dir() / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def released_sdist() -> Path:
    """The unpacked sdist of the released package (downloaded once, then cached)."""
    with _cache_locked():
        return _released_sdist()


def _released_sdist() -> Path:
    cache = cache_dir()
    unpacked = cache / f"statemachine_engine-{RELEASE}"
    if (unpacked / "examples").is_dir():
        return unpacked
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        fetched = subprocess.run(
            [str(BIN / "pip"), "download", f"statemachine-engine=={RELEASE}", *DOWNLOAD, tmp],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert fetched.returncode == 0, fetched.stderr[-2000:]
        (sdist,) = Path(tmp).glob("*.tar.gz")
        with tarfile.open(sdist) as archive:
            archive.extractall(tmp, filter="data")
        try:
            os.rename(Path(tmp) / unpacked.name, unpacked)
        except OSError:
            assert (unpacked / "examples").is_dir()  # another run unpacked it first
    return unpacked


def _installed_version(bindir: Path) -> str | None:
    probe = "import importlib.metadata as m; print(m.version('statemachine-engine'))"
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        run = subprocess.run(
            [str(bindir / "python"), "-c", probe], capture_output=True, text=True, check=True
        )
        return run.stdout.strip()
    return None


def released_bin() -> Path:
    """The bin directory of a cached virtual environment with the released package
    installed from PyPI (created on first use; several minutes on a slow host)."""
    with _cache_locked():
        return _released_bin()


def _released_bin() -> Path:
    venv = cache_dir() / f"venv-released-{RELEASE}"
    bindir = venv / "bin"
    if _installed_version(bindir) == RELEASE and (bindir / "statemachine-db").exists():
        return bindir
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--clear", str(venv)], check=True, timeout=300)
    installed = subprocess.run(
        [str(bindir / "python"), *INSTALL, f"statemachine-engine=={RELEASE}"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert installed.returncode == 0, installed.stderr[-2000:]
    assert _installed_version(bindir) == RELEASE
    return bindir
