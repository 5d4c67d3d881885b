"""Private runtime directory for control sockets, and lock files that mark a machine running."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import stat
from pathlib import Path

from statemachine_engine.errors import TransportError
from statemachine_engine.names import is_valid_name, name_problem, shown

log = logging.getLogger(__name__)

ENV_RUNTIME_DIR = "STATEMACHINE_RUNTIME_DIR"
SUN_PATH_MAX = 107
"""Longest socket path in bytes: sun_path is 108 bytes including the trailing NUL."""


def _candidate() -> Path:
    explicit = os.environ.get(ENV_RUNTIME_DIR)
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isdir(xdg):
        return Path(xdg) / "statemachine-engine"
    return Path(f"/tmp/statemachine-engine-{os.getuid()}")  # noqa: S108 - checked below


def _check(path: Path) -> None:
    """Refuse a directory another user could plant sockets in or redirect."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise TransportError(f"runtime directory {path}: {exc.strerror}") from exc
    if stat.S_ISLNK(st.st_mode):
        raise TransportError(f"runtime directory {path} is a symlink; refusing to use it")
    if not stat.S_ISDIR(st.st_mode):
        raise TransportError(f"runtime directory {path} is not a directory")
    if st.st_uid != os.getuid():
        raise TransportError(
            f"runtime directory {path} is owned by uid {st.st_uid}, not by us ({os.getuid()})"
        )
    if st.st_mode & 0o077:
        raise TransportError(
            f"runtime directory {path} has mode {stat.S_IMODE(st.st_mode):04o}; "
            f"it must not be group/world accessible (chmod 700 {path})"
        )


def runtime_dir(create: bool = True) -> Path:
    """Return the private directory for sockets and lock files, creating it (0700) if asked.

    Order: $STATEMACHINE_RUNTIME_DIR, $XDG_RUNTIME_DIR/statemachine-engine (if that exists),
    /tmp/statemachine-engine-<uid>. Raises TransportError if the directory is unsafe. With
    create=False a missing directory is returned unchecked (there is nothing in it to trust).
    """
    path = _candidate()
    if create:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            os.mkdir(path, 0o700)
            os.chmod(path, 0o700)  # the umask may have removed owner bits
        except FileExistsError:
            pass
        except OSError as exc:
            raise TransportError(f"cannot create runtime directory {path}: {exc.strerror}") from exc
    elif not os.path.lexists(path):
        return path
    _check(path)
    return path


def validate_machine_name(machine_name: str) -> str:
    """Return the name if it follows the name rule (so it is safe as a file name), else
    raise TransportError."""
    problem = name_problem(machine_name)
    if problem is not None:
        raise TransportError(f"invalid machine name {shown(machine_name)}: {problem}")
    return machine_name


def socket_path(machine_name: str, *, create: bool = True) -> Path:
    """Return the control-socket path of a machine, checking name and sun_path length."""
    validate_machine_name(machine_name)
    path = runtime_dir(create=create) / f"{machine_name}.sock"
    if len(os.fsencode(path)) > SUN_PATH_MAX:
        raise TransportError(
            f"socket path {path} is longer than {SUN_PATH_MAX} bytes; "
            f"set {ENV_RUNTIME_DIR} to a shorter directory"
        )
    return path


def lock_path(machine_name: str, *, create: bool = True) -> Path:
    """Return the lock-file path that marks a machine as running."""
    validate_machine_name(machine_name)
    return runtime_dir(create=create) / f"{machine_name}.lock"


def file_id(path: Path) -> tuple[int, int] | None:
    """(st_dev, st_ino) of a path without following symlinks, or None if it is missing."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


class MachineLock:
    """An exclusive flock on ``<name>.lock``; holding it is what makes a machine "running"."""

    def __init__(self, machine_name: str) -> None:
        self.path = lock_path(machine_name)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self) -> bool:
        """Take the lock and write our pid into the file; False if another holder has it."""
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        while self._fd is None:
            try:
                fd = os.open(self.path, flags, 0o600)
            except OSError as exc:
                raise TransportError(f"cannot open lock file {self.path}: {exc}") from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                st = os.fstat(fd)
                if (st.st_dev, st.st_ino) != file_id(self.path):
                    os.close(fd)  # the previous holder unlinked it before we locked it: reopen
                    continue
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            except BlockingIOError:
                os.close(fd)
                return False
            except BaseException:
                os.close(fd)
                raise
            self._fd = fd
        return True

    def holder_pid(self) -> int | None:
        """The pid the current holder wrote, if readable."""
        try:
            text = self.path.read_text(errors="replace").strip()
        except OSError:
            return None
        return int(text) if text.isdigit() and len(text) < 12 else None

    def release(self) -> None:
        """Unlink the lock file if it is still ours, then drop the lock. Idempotent."""
        if self._fd is None:
            return
        st = os.fstat(self._fd)
        if file_id(self.path) == (st.st_dev, st.st_ino):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
        os.close(self._fd)
        self._fd = None


def machine_files(suffix: str) -> list[tuple[str, Path]]:
    """(machine name, path) for each ``<name><suffix>`` with a valid name in the runtime dir."""
    try:
        directory = runtime_dir(create=False)
        with os.scandir(directory) as it:
            found = [e.name for e in it if e.name.endswith(suffix)]
    except FileNotFoundError:
        return []
    except (TransportError, OSError) as exc:
        log.warning("cannot list runtime directory: %s", exc)
        return []
    result: list[tuple[str, Path]] = []
    for filename in sorted(found):
        name = filename[: -len(suffix)]
        if is_valid_name(name):
            result.append((name, directory / filename))
    return result


def running_machines() -> list[str]:
    """Names of machines whose lock file is held by a live process, sorted."""
    names: list[str] = []
    for name, path in machine_files(".lock"):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            names.append(name)
        except OSError:
            pass
        finally:
            os.close(fd)
    return names
