"""The transaction a PostgreSQL unit of work runs on: named statements (pipelined in a
write), and the NOTIFYs to send with or after its COMMIT."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from psycopg.rows import DictRow

from statemachine_engine.database.postgres.target import Channels
from statemachine_engine.database.queries import Queries
from statemachine_engine.database.tx import NO_ARGS, AppendedRows, Row

logger = logging.getLogger("statemachine_engine.database.postgres.connection")

QUERIES = Queries("postgres")
EVENT_NOTICE = '{"kind":"event"}'


def read_xid(cur: psycopg.Cursor[DictRow]) -> int | None:
    row = cur.fetchone()
    return int(row["xid"]) if row else None


class Tx:
    """The cursor a unit of work runs on: named statements, and the NOTIFYs to send just
    before COMMIT (delivered if and only if it commits) or just after it."""

    def __init__(self, cur: psycopg.Cursor[DictRow], channels: Channels) -> None:
        self.cur = cur
        self.channels = channels
        #: Set while a write runs in pipeline mode: statements are sent without waiting for
        #: their results until a result is read (query, changes) or the pipeline ends.
        self.pipeline: psycopg.Pipeline | None = None
        self.notices: dict[tuple[str, str], None] = {}
        self.after_commit: dict[str, None] = {}
        self.appended = AppendedRows()

    def rows(self, query: Any, args: Sequence[Any] | Mapping[str, Any] | None = None) -> list[Any]:
        self.cur.execute(query, args)
        if self.pipeline is not None:
            self.pipeline.sync()  # this result, and those of the statements queued before it
        return self.cur.fetchall() if self.cur.description is not None else []

    def one(self, query: Any, args: Sequence[Any] | Mapping[str, Any] | None = None) -> Any:
        found = self.rows(query, args)
        return found[0] if found else None

    def query(self, name: str, args: Mapping[str, Any] = NO_ARGS) -> list[dict[str, Any]]:
        text = QUERIES[name]
        return self.rows(text, args) if text else []

    def run(self, name: str, args: Mapping[str, Any] = NO_ARGS) -> None:
        text = QUERIES[name]
        if text:
            self.cur.execute(text, args)

    def query_one(self, name: str, args: Mapping[str, Any] = NO_ARGS) -> dict[str, Any] | None:
        found = self.query(name, args)
        return found[0] if found else None

    def changes(self) -> int:
        if self.pipeline is not None:
            self.pipeline.sync()  # the row count arrives with the statement's result
        return int(self.cur.rowcount)

    def append(self, name: str, row: Row) -> None:
        self.appended.add(name, row)

    def wake_jobs(self, job_type: str) -> None:
        self.notify(self.channels.jobs, json.dumps({"kind": "job", "job_type": job_type}))

    def wake_machine(self, name: str) -> None:
        self.notify(self.channels.machine(name), EVENT_NOTICE)

    def stream_changed(self) -> None:
        self.notify_after_commit(self.channels.realtime)

    def notify(self, channel: str, payload: str = "") -> None:
        """NOTIFY in this transaction: delivered if and only if it commits."""
        self.notices[(channel, payload)] = None

    def notify_after_commit(self, channel: str) -> None:
        """An empty NOTIFY sent after COMMIT, best effort. A NOTIFY takes a database-wide
        lock from the end of its transaction through the commit's flush to disk; sent on
        its own it holds that lock for microseconds instead, so busy writers (every step
        adds realtime rows) do not queue behind one another's fsync."""
        self.after_commit[channel] = None

    def send_after_commit(self) -> None:
        for channel in self.after_commit:
            try:
                self.cur.execute("SELECT pg_notify(%s, '')", (channel,))
            except psycopg.Error as exc:  # a lost wake-up only delays the reader
                logger.debug("NOTIFY %s after commit failed: %s", channel, exc)
                return

    def send_notices(self) -> None:
        if self.notices and self.after_commit:
            # The transaction takes the NOTIFY lock for its own notices anyway: the stream
            # announcement goes with them at no extra cost and saves a round trip after.
            for channel in self.after_commit:
                self.notices[(channel, "")] = None
            self.after_commit.clear()
        if self.notices:
            channels, payloads = zip(*self.notices, strict=True)
            self.cur.execute(
                "SELECT pg_notify(c, p) FROM unnest(%s::text[], %s::text[]) AS t(c, p)",
                (list(channels), list(payloads)),
            )
