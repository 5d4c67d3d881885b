"""Machines, written once for every dialect: registration (one live process per name),
status, definitions and the transition history."""

from __future__ import annotations

from typing import Any

from statemachine_engine.clock import Clock
from statemachine_engine.database.liveness import registration_refusal
from statemachine_engine.database.records import MachineStatus, TransitionRecord
from statemachine_engine.database.rows import machine_from_row, transition_from_row
from statemachine_engine.database.stream import insert_realtime
from statemachine_engine.database.tx import Connection, Row, Tx
from statemachine_engine.errors import MachineRunningError


class MachineLog:
    """The machine and history methods of the Store contract."""

    conn: Connection
    clock: Clock
    refused_names: set[str]

    def register_machine(
        self,
        name: str,
        state: str,
        *,
        pid: int,
        hostname: str,
        config_path: str,
        definition_name: str,
        definition_hash: str,
        definition_text: str,
        at: float,
        pid_start: int | None = None,
        entered_at: float | None = None,
        snapshot: str | None = None,
    ) -> MachineStatus:
        def work(tx: Tx) -> Row:
            tx.run("machine_lock", {"name": name})
            current = tx.query_one("machine_get", {"name": name})
            refusal = registration_refusal(current, name, pid, hostname)
            if refusal is not None:
                self.refused_names.add(name)
                raise MachineRunningError(refusal)
            definition = {
                "digest": definition_hash,
                "name": definition_name,
                "source": config_path,
                "text": definition_text,
                "created_at": at,
            }
            tx.run("definition_insert", definition)
            row = tx.query_one(
                "machine_register",
                {
                    "name": name,
                    "state": state,
                    "at": at,
                    "pid": pid,
                    "hostname": hostname,
                    "pid_start": pid_start,
                    "config_path": config_path,
                    "definition_name": definition_name,
                    "definition_hash": definition_hash,
                    "entered_at": entered_at,
                    "snapshot": snapshot,
                },
            )
            assert row is not None
            notice = {
                "machine_name": name,
                "state": state,
                "pid": pid,
                "definition_hash": definition_hash,
            }
            insert_realtime(tx, name, "machine_started", notice, at)
            return row

        registered = machine_from_row(self.conn.write(work))
        self.refused_names.discard(name)
        return registered

    def machine_stopped(self, name: str, status: str, at: float) -> None:
        if name in self.refused_names:
            return  # the row belongs to the machine that runs: never mark it stopped

        def work(tx: Tx) -> None:
            tx.run("machine_stop", {"status": status, "at": at, "name": name})
            notice = {"machine_name": name, "status": status}
            insert_realtime(tx, name, "machine_stopped", notice, at)

        self.conn.write(work)

    def get_machine(self, name: str) -> MachineStatus | None:
        row = self.conn.read(lambda tx: tx.query_one("machine_get", {"name": name}))
        return machine_from_row(row) if row else None

    def machine_snapshot(self, name: str) -> str | None:
        row = self.conn.read(lambda tx: tx.query_one("machine_snapshot", {"name": name}))
        return None if row is None else row["snapshot"]

    def list_machines(self) -> list[MachineStatus]:
        return [machine_from_row(r) for r in self.conn.read(lambda tx: tx.query("machines_list"))]

    def get_definition(self, digest: str) -> dict[str, Any] | None:
        return self.conn.read(lambda tx: tx.query_one("definition_get", {"digest": digest}))

    def list_definitions(self) -> list[dict[str, Any]]:
        """Every stored definition version (digest, name, first seen), oldest first."""
        return self.conn.read(lambda tx: tx.query("definitions_list"))

    def history(self, *, machine: str | None = None, limit: int = 100) -> list[TransitionRecord]:
        statement = "history_all" if machine is None else "history_of"
        args = {"machine": machine, "limit": limit}
        rows = self.conn.read(lambda tx: tx.query(statement, args))
        return [transition_from_row(r) for r in rows]
