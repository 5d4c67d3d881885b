"""SQLite adapter of the store (apsw, WAL, BEGIN IMMEDIATE)."""

from __future__ import annotations

from statemachine_engine.database.sqlite.store import SQLiteStore

__all__ = ["SQLiteStore"]
