"""Versioned schema files: `NNN_name.sql` applied once each, in order, per schema directory."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

_NAME = re.compile(r"^(\d{3,})_[A-Za-z0-9_]+\.sql$")


@dataclass(frozen=True)
class Migration:
    """One schema file; `key` (namespace/file name) is what is recorded as applied."""

    key: str
    sql: str


def builtin_migrations(backend: str) -> list[Migration]:
    """The engine's own schema files for a backend (`sqlite` or `postgres`)."""
    root = resources.files("statemachine_engine.database").joinpath("schema", backend)
    files = sorted(
        (entry.name, entry.read_text(encoding="utf-8"))
        for entry in root.iterdir()
        if _NAME.match(entry.name)
    )
    return [Migration(f"engine/{name}", sql) for name, sql in files]


def directory_migrations(directory: str | Path) -> list[Migration]:
    """A domain project's own schema files, namespaced by the directory name."""
    path = Path(directory)
    files = sorted(p for p in path.iterdir() if _NAME.match(p.name))
    return [Migration(f"{path.name}/{p.name}", p.read_text(encoding="utf-8")) for p in files]
