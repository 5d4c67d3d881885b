"""Wake-ups over LISTEN/NOTIFY on the store's own connection: one connection per process.

The channels are LISTENed on the connection the store's units of work use. A notification
that arrives while a unit of work runs is handed over by psycopg as it reads the results
(on that thread); while the connection is idle, a thread waits for its socket to become
readable — without holding the connection — and then reads what arrived under the
connection's lock. After a reconnect (by whichever thread found the connection lost) the
channels are LISTENed again on the new connection and every listener is told
`{"kind": "reconnected"}`, so its owner re-checks what it may have missed.
"""

from __future__ import annotations

import json
import logging
import select
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

from statemachine_engine.database.postgres.connection import Connection, describe
from statemachine_engine.database.postgres.tx import Tx
from statemachine_engine.errors import StoreError

logger = logging.getLogger(__name__)

#: Longest wait on the idle socket: a closed listener's thread ends within this.
POLL_SECONDS = 0.5
Callback = Callable[[dict[str, Any]], object]


def _message(channel: str, payload: str, kinds: dict[str, str]) -> dict[str, Any]:
    try:
        message = json.loads(payload) if payload else {}
    except ValueError:
        message = {}
    if not isinstance(message, dict):
        message = {}
    message.setdefault("kind", kinds.get(channel, "event"))
    return message


class Listener:
    """Callbacks for the notifications on `channels` (name -> message kind for empty
    payloads) until close()."""

    def __init__(self, hub: Hub, channels: dict[str, str], callback: Callback) -> None:
        self.hub = hub
        self.channels = channels
        self.callback = callback

    def deliver(self, message: dict[str, Any]) -> None:
        try:
            self.callback(message)
        except Exception:
            logger.exception("wake-up callback failed")

    def close(self) -> None:
        """Stop listening; once the last listener is closed the waiting thread has ended
        when this returns."""
        self.hub.remove(self)


class Hub:
    """The listeners of one store connection and the thread that watches it while idle."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.listeners: list[Listener] = []
        self.wanted: Counter[str] = Counter()
        self._guard = threading.Lock()
        self._handled: psycopg.Connection[Any] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        conn.on_reconnect.append(self._relisten)

    def add(self, channels: dict[str, str], callback: Callback) -> Listener:
        """LISTEN on `channels` (in place when this returns) and call back for them."""
        listener = Listener(self, channels, callback)
        self.conn.read(lambda tx: self._listen(tx, list(channels)))
        with self._guard:
            self.listeners.append(listener)
            self.wanted.update(list(channels))
            if self._thread is None:
                self._stop = threading.Event()
                self._thread = threading.Thread(
                    target=self._watch,
                    args=(self._stop,),
                    name=f"pg-listen-{self.conn.target.schema}",
                    daemon=True,
                )
                self._thread.start()
        return listener

    def remove(self, listener: Listener) -> None:
        with self._guard:
            if listener not in self.listeners:
                return
            self.listeners.remove(listener)
            self.wanted.subtract(list(listener.channels))
            unused = [c for c in listener.channels if self.wanted[c] <= 0]
            for channel in unused:
                del self.wanted[channel]
            thread = self._thread if not self.listeners else None
            if thread is not None:
                self._stop.set()
                self._thread = None
        if unused and not self.conn.closed:
            try:
                self.conn.read(lambda tx: _unlisten(tx, unused))
            except StoreError as exc:  # a lost connection has no LISTENs left anyway
                logger.debug("UNLISTEN failed: %s", exc)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=POLL_SECONDS * 4)

    def _listen(self, tx: Tx, channels: list[str]) -> None:
        pg = self._handle(tx)
        for channel in channels:
            pg.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))

    def _handle(self, tx: Tx) -> psycopg.Connection[Any]:
        pg: psycopg.Connection[Any] = tx.cur.connection
        if pg is not self._handled:
            pg.add_notify_handler(self._notified)
            self._handled = pg
        return pg

    def _relisten(self, pg: psycopg.Connection[Any]) -> None:
        """On a new connection (called under the connection's lock): LISTEN again, then
        tell every listener it may have missed notifications."""
        with self._guard:
            channels = list(self.wanted)
            listeners = list(self.listeners)
        if not listeners:
            return
        pg.add_notify_handler(self._notified)
        self._handled = pg
        for channel in channels:
            pg.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        for listener in listeners:
            listener.deliver({"kind": "reconnected"})

    def _notified(self, note: psycopg.Notify) -> None:
        with self._guard:
            listeners = [n for n in self.listeners if note.channel in n.channels]
        for listener in listeners:
            listener.deliver(_message(note.channel, note.payload, listener.channels))

    def _watch(self, stop: threading.Event) -> None:
        while not stop.is_set():
            with self.conn.exclusive() as pg:
                fd = pg.fileno() if pg is not None else None
            if fd is None:
                self._reconnect(stop)
                continue
            try:
                ready = select.select([fd], [], [], POLL_SECONDS)[0]
            except (OSError, ValueError):  # the socket was closed meanwhile
                ready = [fd]
            if ready and not stop.is_set():
                self._drain()

    def _drain(self) -> None:
        """Read what arrived on the idle connection; its notifications reach the handler."""
        with self.conn.exclusive() as pg:
            if pg is None:
                return
            try:
                pg.pgconn.consume_input()
                while (note := pg.pgconn.notifies()) is not None:
                    if pg.pgconn.notify_handler is not None:
                        pg.pgconn.notify_handler(note)
            except psycopg.Error as exc:
                self.conn.lost(pg, str(describe(exc, self.conn.target)))

    def _reconnect(self, stop: threading.Event) -> None:
        """Connect again (the connection's own backoff; LISTENs renewed by _relisten)."""
        if self.conn.closed:
            stop.wait(POLL_SECONDS)
            return
        try:
            self.conn.read(lambda tx: None)
        except StoreError as exc:
            if not stop.is_set():
                logger.warning("LISTEN: %s; still retrying", exc)
            stop.wait(POLL_SECONDS)


def _unlisten(tx: Tx, channels: list[str]) -> None:
    for channel in channels:
        tx.cur.execute(sql.SQL("UNLISTEN {}").format(sql.Identifier(channel)))
