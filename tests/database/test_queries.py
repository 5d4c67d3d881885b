"""The named-statement files: both dialects name the same statements, and the loader says
clearly what is wrong with a file or a name."""

from __future__ import annotations

import pytest

from statemachine_engine.database.queries import Queries, parse
from statemachine_engine.errors import StoreError


def test_both_dialects_name_the_same_statements() -> None:
    sqlite, postgres = Queries("sqlite"), Queries("postgres")
    assert sqlite.names() == postgres.names()
    assert {"claim", "claim.job_type", "job_insert", "jobs_insert_many"} <= sqlite.names()


def test_blocks_drop_comments_and_the_final_semicolon() -> None:
    found = parse(
        "-- header\n-- name: a\n-- what a does\nSELECT 1;\n\n-- name: b.c\n-- nothing to run\n",
        "x.sql",
    )
    assert found == {"a": "SELECT 1", "b.c": ""}


def test_a_statement_defined_twice_is_an_error() -> None:
    with pytest.raises(StoreError, match=r"x\.sql: statement 'a' is defined twice"):
        parse("-- name: a\nSELECT 1\n-- name: a\nSELECT 2\n", "x.sql")


def test_variants_put_their_fragments_where_the_filters_go() -> None:
    queries = Queries("sqlite")
    text = queries["claim+job_type+machine_type"]
    assert text.count("AND job_type = :job_type") == 2  # both halves of the pick
    assert "machine_type = :machine_type" in text and "/*filters*/" not in text
    assert queries["claim+job_type+machine_type"] is text  # built once
    assert "job_id = :job_id" not in queries["claim"].replace("/*filters*/", "")


def test_unknown_names_and_fragments_are_errors() -> None:
    queries = Queries("postgres")
    with pytest.raises(StoreError, match="no postgres statement named 'nope'"):
        queries["nope"]
    with pytest.raises(StoreError, match=r"'claim\.color'"):
        queries["claim+color"]
    with pytest.raises(StoreError, match="'job_get' takes no filters"):
        queries["job_get+job_type"]
