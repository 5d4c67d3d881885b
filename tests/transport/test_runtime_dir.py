"""Runtime directory resolution and safety checks, socket paths, machine lock files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from statemachine_engine.errors import TransportError
from statemachine_engine.transport import running_machines, runtime_dir, socket_path
from statemachine_engine.transport.runtime_dir import (
    ENV_RUNTIME_DIR,
    SUN_PATH_MAX,
    MachineLock,
    machine_files,
    validate_machine_name,
)


@pytest.fixture
def rundir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "run"
    monkeypatch.setenv(ENV_RUNTIME_DIR, str(path))
    return path


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_explicit_dir_is_created_0700_whatever_the_umask(rundir: Path) -> None:
    old = os.umask(0o277)
    try:
        assert runtime_dir() == rundir
    finally:
        os.umask(old)
    assert mode(rundir) == 0o700
    assert os.lstat(rundir).st_uid == os.getuid()


def test_nested_explicit_dir_is_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "a" / "b" / "run"
    monkeypatch.setenv(ENV_RUNTIME_DIR, str(target))
    assert runtime_dir() == target
    assert mode(target) == 0o700


def test_xdg_runtime_dir_is_used_when_it_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_RUNTIME_DIR, raising=False)
    xdg = tmp_path / "xdg"
    xdg.mkdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(xdg))
    assert runtime_dir() == xdg / "statemachine-engine"
    assert mode(xdg / "statemachine-engine") == 0o700


def test_missing_xdg_falls_back_to_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_RUNTIME_DIR, raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "absent"))
    expected = Path(f"/tmp/statemachine-engine-{os.getuid()}")
    assert runtime_dir(create=False) == expected


def test_create_false_does_not_create(rundir: Path) -> None:
    assert runtime_dir(create=False) == rundir
    assert not rundir.exists()


def test_symlinked_dir_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    link = tmp_path / "link"
    link.symlink_to(real)
    monkeypatch.setenv(ENV_RUNTIME_DIR, str(link))
    with pytest.raises(TransportError, match="symlink"):
        runtime_dir()
    with pytest.raises(TransportError, match="symlink"):
        runtime_dir(create=False)


@pytest.mark.parametrize("bad_mode", [0o777, 0o1777, 0o750, 0o705, 0o720])
def test_group_or_world_accessible_dir_is_refused(rundir: Path, bad_mode: int) -> None:
    rundir.mkdir()
    os.chmod(rundir, bad_mode)
    with pytest.raises(TransportError, match=r"chmod 700") as info:
        runtime_dir()
    assert "\n" not in str(info.value)
    assert mode(rundir) == bad_mode, "an unsafe directory must be refused, not repaired"


def test_regular_file_is_refused(rundir: Path) -> None:
    rundir.write_text("")
    with pytest.raises(TransportError, match="not a directory"):
        runtime_dir()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown")
def test_dir_owned_by_another_user_is_refused(rundir: Path) -> None:
    rundir.mkdir(mode=0o700)
    os.chown(rundir, 65534, 65534)
    with pytest.raises(TransportError, match="owned by uid 65534"):
        runtime_dir()


@pytest.mark.parametrize("name", ["worker", "a", "W-1.b_2", "9lives", "x" * 100])
def test_valid_machine_names(rundir: Path, name: str) -> None:
    assert validate_machine_name(name) == name
    if len(name) < 20:
        assert socket_path(name) == rundir / f"{name}.sock"


@pytest.mark.parametrize(
    "name",
    ["", ".hidden", "-x", "_x", "a/b", "../etc", "a b", "é", "x" * 101, "a\x00b", "a\nb"],
)
def test_invalid_machine_names_are_refused(rundir: Path, name: str) -> None:
    with pytest.raises(TransportError, match="invalid machine name"):
        socket_path(name)


def test_too_long_socket_path_names_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    long_dir = tmp_path / ("d" * 100)
    monkeypatch.setenv(ENV_RUNTIME_DIR, str(long_dir))
    with pytest.raises(TransportError, match=ENV_RUNTIME_DIR):
        socket_path("worker")


def test_socket_path_at_the_limit_is_accepted(rundir: Path) -> None:
    room = SUN_PATH_MAX - len(os.fsencode(rundir)) - len("/.sock")
    assert 0 < room <= 100
    assert len(os.fsencode(socket_path("m" * room))) == SUN_PATH_MAX


def test_machine_lock_is_exclusive_and_records_pid(rundir: Path) -> None:
    first = MachineLock("worker")
    assert first.try_acquire()
    assert first.held
    assert mode(first.path) == 0o600
    second = MachineLock("worker")
    assert not second.try_acquire()
    assert second.holder_pid() == os.getpid()
    assert running_machines() == ["worker"]
    first.release()
    first.release()
    assert not first.path.exists()
    assert running_machines() == []
    assert second.try_acquire()
    second.release()


def test_leftover_unlocked_lock_file_is_taken_over(rundir: Path) -> None:
    runtime_dir()
    (rundir / "worker.lock").write_text("999999\n")
    lock = MachineLock("worker")
    assert running_machines() == []
    assert lock.try_acquire()
    assert lock.holder_pid() == os.getpid()
    lock.release()


def test_release_leaves_a_successors_lock_file_alone(rundir: Path) -> None:
    lock = MachineLock("worker")
    assert lock.try_acquire()
    os.unlink(lock.path)
    successor = MachineLock("worker")
    assert successor.try_acquire()
    lock.release()
    assert successor.path.exists()
    assert running_machines() == ["worker"]
    successor.release()


def test_machine_files_skips_invalid_names(rundir: Path) -> None:
    runtime_dir()
    for filename in ["ok.sock", ".bad.sock", "also-ok.sock", "x.lock", "notes.txt"]:
        (rundir / filename).write_text("")
    assert [name for name, _ in machine_files(".sock")] == ["also-ok", "ok"]


def test_running_machines_without_dir_is_empty(rundir: Path) -> None:
    assert running_machines() == []
    assert not rundir.exists()
