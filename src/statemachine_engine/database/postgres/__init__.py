"""PostgreSQL adapter of the store (psycopg 3, SKIP LOCKED claims, LISTEN/NOTIFY wake-ups)."""

from __future__ import annotations

from statemachine_engine.database.postgres.store import PostgresStore

__all__ = ["PostgresStore"]
