"""Helpers for tests on PostgreSQL: the server to use and a fresh schema per test.

The server is `STATEMACHINE_TEST_PG`, else the local default; an unreachable server is an
error, never a reason to skip.
"""

from __future__ import annotations

import os
import uuid
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from statemachine_engine.database.postgres.connection import parse_url, redact

ENV_VAR = "STATEMACHINE_TEST_PG"
DEFAULT_TEST_URL = "postgresql://postgres@127.0.0.1:5432/test"


def server_url() -> str:
    """The PostgreSQL server tests run against."""
    return os.environ.get(ENV_VAR) or DEFAULT_TEST_URL


def check_server(url: str | None = None) -> str:
    """`url` (default server_url()) if a server answers there; raises RuntimeError otherwise."""
    url = url or server_url()
    try:
        with psycopg.connect(parse_url(url).conninfo, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        raise RuntimeError(
            f"PostgreSQL test server {redact(url)} is not reachable ({exc}); start one"
            f" (`make pg`) or set {ENV_VAR}"
        ) from None
    return url


def with_schema(url: str, schema: str) -> str:
    """`url` with `?schema=` set to schema (other query options kept)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "schema"]
    query.append(("schema", schema))
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


def fresh_schema_url(url: str | None = None, prefix: str = "t_") -> str:
    """A URL naming a new, unused schema on the test server (created on first use)."""
    return with_schema(url or server_url(), f"{prefix}{uuid.uuid4().hex[:16]}")


def drop_schema(url: str) -> None:
    """Drop the schema a URL names, with everything in it."""
    target = parse_url(url)
    with psycopg.connect(target.conninfo, autocommit=True, connect_timeout=5) as conn:
        conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(target.schema))
        )
