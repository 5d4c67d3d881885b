"""StreamCursor against a model of PostgreSQL writers: whatever the interleaving of writers
taking transaction ids, drawing stream ids, committing or rolling back, and reads with a
small batch limit, the reader gets every committed id once, in increasing order."""

from __future__ import annotations

from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from statemachine_engine.database.stream import StreamCursor

OP = st.sampled_from(["write", "begin", "draw", "commit", "commit", "abort", "read", "read"])
OPS = st.lists(st.tuples(OP, st.integers(0, 9)), min_size=4, max_size=60)


class Server:
    """Sequence, transaction ids and visibility, as PostgreSQL has them for stream rows."""

    def __init__(self) -> None:
        self.next_xid = 100
        self.next_id = 1
        self.open: dict[int, list[int]] = {}
        self.visible: set[int] = set()
        self.committed: list[int] = []

    def pick(self, n: int) -> int | None:
        return sorted(self.open)[n % len(self.open)] if self.open else None

    def apply(self, op: str, n: int) -> None:
        if op == "write":  # a writer whose first write is its stream rows
            self.apply("begin", 0)
            op, n = "draw", len(self.open) - 1
        xid = self.pick(n)
        if op == "begin":
            self.open[self.next_xid] = []
            self.next_xid += 1
        elif op == "draw" and xid is not None:  # the writer's xid exists before its ids
            for _ in range(1 + n % 3):
                self.open[xid].append(self.next_id)
                self.next_id += 1
        elif op == "commit" and xid is not None:
            ids = self.open.pop(xid)
            self.visible.update(ids)
            self.committed += ids
        elif op == "abort" and xid is not None:
            self.open.pop(xid)

    def window(self, cursor: StreamCursor, limit: int) -> list[dict[str, Any]]:
        """What `realtime_window` returns on PostgreSQL."""
        snap = {"snap_xmin": min(self.open, default=self.next_xid), "snap_xmax": self.next_xid}
        ids = sorted(i for i in self.visible if i > cursor.floor and i not in cursor.held)
        rows = [
            {
                **snap,
                "id": i,
                "machine_name": "m",
                "kind": "activity",
                "payload": "{}",
                "created_at": 0.0,
            }
            for i in ids[:limit]
        ]
        return rows or [{**snap, "id": None}]


@settings(max_examples=300, deadline=None)
@given(ops=OPS, limit=st.integers(1, 4))
@example(ops=[("write", 0), ("write", 0), ("commit", 1), ("read", 0)], limit=2)
def test_every_committed_id_once_in_order(ops: list[tuple[str, int]], limit: int) -> None:
    server = Server()
    cursor = StreamCursor()
    got: list[int] = []
    for op, n in ops:
        if op == "read":
            got += [e.id for e in cursor.advance(server.window(cursor, limit), limit)]
            assert got == sorted(set(got))  # once each, in increasing id order
        else:
            server.apply(op, n)
    for xid in list(server.open):
        server.apply("commit", sorted(server.open).index(xid))
    for _ in range(len(server.committed) + 3):  # drain: each read makes progress
        got += [e.id for e in cursor.advance(server.window(cursor, limit), limit)]
    assert got == sorted(server.committed)
    assert not cursor.held


def test_rows_above_an_open_writer_wait_for_it() -> None:
    server = Server()
    cursor = StreamCursor()
    for op, n in [("begin", 0), ("draw", 0), ("begin", 0), ("draw", 1), ("commit", 1)]:
        server.apply(op, n)
    assert server.visible == {2, 3} and cursor.advance(server.window(cursor, 10), 10) == []
    server.apply("commit", 0)
    assert [e.id for e in cursor.advance(server.window(cursor, 10), 10)] == [1, 2, 3]


def test_sqlite_reads_are_final_at_once() -> None:
    row = {"snap_xmin": None, "snap_xmax": None, "machine_name": None, "kind": "k"}
    rows = [{**row, "id": i, "payload": "{}", "created_at": 0.0} for i in (3, 4, 7)]
    cursor = StreamCursor()
    assert [e.id for e in cursor.advance(rows, 3)] == [3, 4, 7]
    assert cursor.floor == 7 and cursor.more and not cursor.held
