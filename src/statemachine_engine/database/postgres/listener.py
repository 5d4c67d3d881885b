"""Wake-ups over LISTEN/NOTIFY: a thread holding its own connection feeds notifications to a
callback, and after a lost connection reconnects with backoff, LISTENs again and reports
`{"kind": "reconnected"}` so the owner re-checks what it may have missed."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

from statemachine_engine.database.postgres.connection import (
    Target,
    connect,
    connect_with_backoff,
    describe,
)

logger = logging.getLogger(__name__)

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
    """LISTEN on `channels` (name -> message kind for empty payloads) until close()."""

    def __init__(self, target: Target, channels: dict[str, str], callback: Callback) -> None:
        self.target = target
        self.channels = channels
        self.callback = callback
        self._closed = threading.Event()
        self._conn: psycopg.Connection[Any] | None = None
        try:
            self._conn = self._listen(connect(target, "listen"))
        except psycopg.Error as exc:
            logger.warning("LISTEN on %s failed (%s); retrying", target.display, exc)
        self._thread = threading.Thread(
            target=self._run, name=f"pg-listen-{target.schema}", daemon=True
        )
        self._thread.start()

    def _listen(self, conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
        for channel in self.channels:
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        return conn

    def _reconnect(self) -> psycopg.Connection[Any] | None:
        while not self._closed.is_set():
            try:
                conn = connect_with_backoff(
                    self.target, self.target.reconnect_timeout, self._closed.is_set, "listen"
                )
                if conn is None:
                    return None
                return self._listen(conn)
            except Exception as exc:
                logger.warning("LISTEN on %s: %s; still retrying", self.target.display, exc)
        return None

    def _run(self) -> None:
        while not self._closed.is_set():
            conn = self._conn
            if conn is None or conn.broken or conn.closed:
                if conn is not None:
                    conn.close()
                lost = time.monotonic()
                self._conn = conn = self._reconnect()
                if conn is None:
                    break
                logger.warning(
                    "LISTEN on %s: reconnected after %.1f s",
                    self.target.display,
                    time.monotonic() - lost,
                )
                self._deliver({"kind": "reconnected"})
            try:
                for note in conn.notifies(timeout=POLL_SECONDS):
                    self._deliver(_message(note.channel, note.payload, self.channels))
            except psycopg.Error as exc:
                if not self._closed.is_set():
                    logger.warning(
                        "LISTEN connection lost (%s); reconnecting", describe(exc, self.target)
                    )
                conn.close()
        if self._conn is not None:
            self._conn.close()

    def _deliver(self, message: dict[str, Any]) -> None:
        try:
            self.callback(message)
        except Exception:
            logger.exception("wake-up callback failed")

    def close(self) -> None:
        """Stop listening; returns once the thread has let go of its connection."""
        self._closed.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=POLL_SECONDS * 4)
