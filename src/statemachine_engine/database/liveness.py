"""Whether the process behind a machine row or a lease still lives: a pid plus the process
start time, so a pid the kernel has handed to another process does not pass for the old one."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import Any

from statemachine_engine.database.records import MachineStatus


def this_host() -> str:
    """The host name stored with machine rows and lease owners."""
    return socket.gethostname()


def _stat_fields(pid: int) -> list[bytes] | None:
    """The fields of /proc/<pid>/stat after the command name (field 3 onwards); None when
    the process does not exist or the platform has no /proc."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            text = handle.read()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and ')': split after its last ')'.
    return text.rsplit(b")", 1)[-1].split()


def process_start(pid: int) -> int | None:
    """Start time of process `pid` in clock ticks since boot (/proc/<pid>/stat field 22);
    None when the process does not exist or the platform has no /proc."""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def is_zombie(pid: int) -> bool:
    """True when `pid` has exited and waits for its parent to reap it (state Z or X): its
    pid and start time still answer, but nothing runs."""
    fields = _stat_fields(pid)
    return fields is not None and bool(fields) and fields[0] in (b"Z", b"X")


def pid_exists(pid: int) -> bool:
    """True while a process with this id exists (ours or another user's)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def process_alive(
    pid: int | None, start: int | None = None, hostname: str | None = None
) -> bool | None:
    """Whether the process recorded as (`hostname`, `pid`, `start`) still runs. None when it
    cannot be told from here: another host, or no pid. Without a recorded start time only
    the pid is checked (rows written before start times were stored)."""
    if not pid or pid <= 0 or (hostname and hostname != this_host()):
        return None
    if not pid_exists(pid) or is_zombie(pid):
        return False
    if start is None:
        return True
    current = process_start(pid)
    return current is None or current == start


def owner_pid(owner: str, machine_name: str, hostname: str) -> int | None:
    """The pid in a lease owner `machine@host:pid` when it names `machine_name` on
    `hostname`; None otherwise."""
    prefix = f"{machine_name}@{hostname}:"
    if not owner.startswith(prefix):
        return None
    tail = owner[len(prefix) :]
    return int(tail) if tail.isdigit() and len(tail) < 12 else None


def registration_refusal(
    row: Mapping[str, Any] | None, name: str, pid: int, hostname: str
) -> str | None:
    """Why process `pid` on `hostname` may not start machine `name` while `row` (its
    machine_state row) stands, or None. A name runs once per database: refused while the row
    says running with a live process on this host (pid and start time), and while it says
    running on another host, whose process cannot be checked from here."""
    if row is None or row["status"] != "running":
        return None
    other_pid, other_host = row["pid"], row["hostname"]
    if other_pid == pid and other_host == hostname:
        return None  # this very process, starting the machine again in-process
    if other_host and other_host != hostname:
        return (
            f"machine {name!r} is recorded as running on host {other_host} (pid {other_pid});"
            f" stop it there, or if that host or process is gone run"
            f" `statemachine-cli mark-stopped {name}`"
        )
    if process_alive(other_pid, row.get("pid_start"), other_host) is False or not other_pid:
        return None
    return (
        f"machine {name!r} is already running against this database"
        f" (pid {other_pid} on host {other_host or hostname})"
    )


def holder_alive(owner: str, machine: MachineStatus | None) -> bool | None:
    """Whether the process behind a lease owner `machine@host:pid` lives: False only when it
    is provably gone (pid dead, or its start time differs from the one `machine`, the
    owner's machine row, recorded for that pid); None when it runs elsewhere or the owner
    has another form."""
    name, _, rest = owner.partition("@")
    host, _, tail = rest.rpartition(":")
    if not name or not host or not tail.isdigit() or len(tail) >= 12:
        return None
    pid = int(tail)
    start = None
    if machine is not None and (machine.pid, machine.hostname) == (pid, host):
        start = machine.pid_start
    return process_alive(pid, start, host)
