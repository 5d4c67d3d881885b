"""Every example, and the process-level behaviours, end to end on PostgreSQL: the very tests
of test_e2e_examples.py and test_e2e_processes.py, collected here again with `db_url`
pointing at a fresh schema on the test server (dropped afterwards)."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from statemachine_engine.database.postgres import testing as pg

pytestmark = pytest.mark.timeout(90)

HERE = Path(__file__).resolve().parent
PROCESS_TESTS = (
    "test_idle_worker_picks_up_a_later_job_within_a_second",
    "test_sigterm_during_bash_stops_cleanly_and_releases_the_job",
    "test_event_sent_to_a_stopped_machine_is_delivered_when_it_starts",
)


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_pg_reuse_{name}", HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_examples = _load("test_e2e_examples")
_processes = _load("test_e2e_processes")
for _name in dir(_examples):
    if _name.startswith("test_"):
        globals()[f"{_name}_on_postgres"] = getattr(_examples, _name)
for _name in PROCESS_TESTS:
    globals()[f"{_name}_on_postgres"] = getattr(_processes, _name)


@pytest.fixture
def db_url() -> Iterator[str]:
    """A fresh schema on the PostgreSQL test server instead of a SQLite file."""
    url = pg.fresh_schema_url(pg.check_server(), prefix="e2e_")
    yield url
    pg.drop_schema(url)
