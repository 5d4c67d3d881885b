"""Run a console script's `main` as if psycopg were not installed:
`python without_psycopg.py statemachine_engine.cli.db list --db …`."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType


class NoPsycopg:
    """A meta-path finder that answers every psycopg import as a missing module would."""

    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if name == "psycopg" or name.startswith(("psycopg.", "psycopg_")):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


if __name__ == "__main__":
    sys.meta_path.insert(0, NoPsycopg())
    module = importlib.import_module(sys.argv[1])
    sys.exit(module.main(sys.argv[2:]))
