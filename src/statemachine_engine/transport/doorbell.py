"""Doorbells: tiny datagrams that wake a parked machine so it re-reads the database.

Events and jobs are committed to the store before a doorbell rings, so a lost, refused or
dropped datagram only delays work until the machine's safety re-check; it never loses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from statemachine_engine.errors import TransportError
from statemachine_engine.transport.runtime_dir import (
    SUN_PATH_MAX,
    MachineLock,
    file_id,
    machine_files,
    socket_path,
    validate_machine_name,
)

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024
#: The doorbell a running `statemachine-ui` owns; machines ring it after every commit.
UI_DOORBELL = "statemachine-ui"
FAULT_NO_DOORBELL_ENV = "STATEMACHINE_FAULT_NO_DOORBELL"
CONTROL_OPS = frozenset({"wake", "stop", "ping"})
_MAX_INT_DIGITS = 32
_MAX_READS_PER_WAKE = 1024
_LOCK_ATTEMPTS = 5

OnMessage = Callable[[dict[str, Any]], None]


def _small_int(text: str) -> int:
    if len(text) > _MAX_INT_DIGITS:
        raise ValueError("integer too long")
    return int(text)


def validate_message(message: object) -> dict[str, Any]:
    """Return the message if it is a well-formed doorbell, else raise ValueError."""
    if not isinstance(message, dict):
        raise ValueError("not a JSON object")
    kind = message.get("kind")
    if kind == "event":
        pass
    elif kind == "job":
        job_type = message.get("job_type")
        if not isinstance(job_type, str) or not job_type:
            raise ValueError("job doorbell without a job_type string")
    elif kind == "control":
        if message.get("op") not in CONTROL_OPS:
            raise ValueError(f"unknown control op {message.get('op')!r:.40}")
    elif kind is None:
        raise ValueError("missing kind")
    else:
        raise ValueError(f"unknown kind {kind!r:.40}")
    return message


def parse_message(data: bytes) -> dict[str, Any]:
    """Decode one datagram; raise ValueError (never anything else) if it is not a doorbell."""
    if not data:
        raise ValueError("empty datagram")
    if len(data) > MAX_MESSAGE_BYTES:
        raise ValueError(f"datagram larger than {MAX_MESSAGE_BYTES} bytes")
    if data[:1] != b"{":
        raise ValueError("not a JSON object")
    try:
        decoded = json.loads(data.decode("utf-8"), parse_int=_small_int)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    except ValueError as exc:
        raise ValueError(f"invalid JSON or UTF-8: {str(exc)[:80]}") from None
    return validate_message(decoded)


def encode_message(message: dict[str, Any]) -> bytes:
    """Validate and encode a doorbell; raise ValueError if invalid or over the size limit."""
    try:
        data = json.dumps(validate_message(message), separators=(",", ":")).encode("utf-8")
    except TypeError as exc:
        raise ValueError(f"doorbell message is not JSON-serialisable: {exc}") from None
    if len(data) > MAX_MESSAGE_BYTES:
        raise ValueError(f"doorbell message is {len(data)} bytes; the limit is {MAX_MESSAGE_BYTES}")
    return data


class _RateLimitedWarning:
    """Log at most one warning per interval, carrying how many were folded into it."""

    def __init__(self, interval: float = 1.0) -> None:
        self._interval = interval
        self._last = -interval
        self._pending = 0

    def __call__(self, fmt: str, *args: object) -> None:
        self._pending += 1
        now = time.monotonic()
        if now - self._last >= self._interval:
            log.warning(fmt + " (%d since the last warning)", *args, self._pending)
            self._last = now
            self._pending = 0


class Doorbell:
    """The receiving end: one non-blocking datagram socket per running machine.

    The socket is bound only once the machine lock is ours, so a socket file left by a dead
    process can be replaced safely while a live owner's socket is never touched.
    """

    def __init__(self, machine_name: str, on_message: OnMessage) -> None:
        self.name = validate_machine_name(machine_name)
        self.on_message = on_message
        self.received = 0
        self.rejected = 0
        self.path: Path | None = None
        self._lock: MachineLock | None = None
        self._sock: socket.socket | None = None
        self._sock_id: tuple[int, int] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._buf = bytearray(MAX_MESSAGE_BYTES + 1)
        self._warn = _RateLimitedWarning()

    async def start(self) -> None:
        """Take the machine lock, bind the socket (0600) and start reading on this loop."""
        if self._sock is not None:
            raise TransportError(f"doorbell for machine {self.name!r} already started")
        self.path = socket_path(self.name)
        lock = MachineLock(self.name)
        for attempt in range(_LOCK_ATTEMPTS):
            if lock.try_acquire():
                break
            if attempt + 1 < _LOCK_ATTEMPTS:
                # A running_machines() probe holds a shared lock for microseconds: retry.
                await asyncio.sleep(0.01 * (attempt + 1))
        else:
            pid = lock.holder_pid()
            raise TransportError(
                f"machine {self.name!r} is already running (pid {pid or 'unknown'})"
            )
        try:
            self._bind(self.path)
        except BaseException:
            lock.release()
            raise
        self._lock = lock
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._fileno(), self._on_readable)
        log.debug("doorbell listening machine=%s path=%s", self.name, self.path)

    async def __aenter__(self) -> Doorbell:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def _bind(self, path: Path) -> None:
        if _socket_is_live(path):
            raise TransportError(f"machine {self.name!r} is already running ({path} answers)")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.bind(os.fspath(path))
            os.chmod(path, 0o600)
        except OSError as exc:
            sock.close()
            raise TransportError(f"cannot bind control socket {path}: {exc}") from exc
        self._sock = sock
        self._sock_id = file_id(path)

    def _fileno(self) -> int:
        assert self._sock is not None
        return self._sock.fileno()

    def _on_readable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        # Bounded so a flood cannot starve the loop; the selector is level-triggered.
        for _ in range(_MAX_READS_PER_WAKE):
            try:
                n = sock.recv_into(self._buf)
            except BlockingIOError:
                return
            except OSError as exc:
                self._warn("doorbell receive error machine=%s: %s", self.name, exc)
                return
            self._handle(bytes(memoryview(self._buf)[:n]))

    def _handle(self, data: bytes) -> None:
        try:
            message = parse_message(data)
        except ValueError as exc:
            self.rejected += 1
            self._warn("doorbell rejected a datagram machine=%s reason=%s", self.name, exc)
            return
        self.received += 1
        try:
            self.on_message(message)
        except Exception:
            log.exception("doorbell handler failed machine=%s kind=%s", self.name, message["kind"])

    def close(self) -> None:
        """Stop reading; remove the socket and lock file if they are still ours. Idempotent."""
        if self._sock is not None:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
            if self.path is not None and file_id(self.path) == self._sock_id:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path)
        self._loop = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None


def _socket_is_live(path: Path) -> bool:
    """True if something is bound to the socket file (a stale file refuses the connect)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(os.fspath(path))
        except OSError:
            return False
    return True


_sender: socket.socket | None = None
_sender_pid = 0
_sender_lock = threading.Lock()
_warn_sender = _RateLimitedWarning()


def _sender_socket() -> socket.socket:
    global _sender, _sender_pid
    with _sender_lock:
        if _sender is None or _sender_pid != os.getpid():
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.setblocking(False)
            _sender, _sender_pid = sock, os.getpid()
        return _sender


def _send(path: Path, data: bytes) -> bool:
    try:
        _sender_socket().sendto(data, os.fspath(path))
    except OSError as exc:
        if exc.errno not in (errno.ENOENT, errno.ECONNREFUSED, errno.EAGAIN):
            log.debug("doorbell not delivered path=%s: %s", path, exc)
        return False
    return True


def ring(machine_name: str, message: dict[str, Any]) -> bool:
    """Wake a machine; False if it is not listening or its queue is full (never raises for that).

    Raises ValueError for an invalid or oversize message and TransportError for an invalid
    machine name. Set STATEMACHINE_FAULT_NO_DOORBELL=1 to drop every doorbell (fault tests).
    """
    data = encode_message(message)
    validate_machine_name(machine_name)
    if os.environ.get(FAULT_NO_DOORBELL_ENV) == "1":
        return False
    try:
        path = socket_path(machine_name, create=False)
    except TransportError as exc:
        _warn_sender("doorbell not sent machine=%s: %s", machine_name, exc)
        return False
    return _send(path, data)


def ring_all(message: dict[str, Any], *, exclude: str | None = None) -> int:
    """Ring every machine socket in the runtime directory; return how many were delivered."""
    data = encode_message(message)
    if os.environ.get(FAULT_NO_DOORBELL_ENV) == "1":
        return 0
    delivered = 0
    for name, path in machine_files(".sock"):
        if name != exclude and len(os.fsencode(path)) <= SUN_PATH_MAX:
            delivered += _send(path, data)
    return delivered
