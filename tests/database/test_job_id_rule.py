"""Store.add_job is the common door for jobs: an id that breaks the name rule never gets in,
on either backend, so every job can be shown and retried from the UI and the CLI."""

from __future__ import annotations

import pytest

from statemachine_engine.database.store import Store
from statemachine_engine.names import NAME_MAX, InvalidNameError


@pytest.mark.parametrize(
    "job_id", ["a/b", "a\nb", "a\x00b", "a\u202eb", "x" * (NAME_MAX + 1), " j", ".j"]
)
def test_add_job_refuses_ids_that_break_the_name_rule(store: Store, job_id: str) -> None:
    with pytest.raises(InvalidNameError, match="invalid job id") as info:
        store.add_job("t", {}, job_id=job_id)
    assert "\n" not in str(info.value) and "\x00" not in str(info.value)
    assert store.list_jobs() == []


def test_add_job_accepts_ids_that_follow_it(store: Store) -> None:
    for job_id in ("job_001", "2026-12-01T01:00:00", "a.b-c", "x" * NAME_MAX):
        assert store.add_job("t", {}, job_id=job_id).job_id == job_id
    assert len(store.add_job("t", {}).job_id) == 12
