"""`statemachine-lint FILE…`: the 1.0 name of `statemachine-validate` (same options:
`--strict`, `--format text|json`, `--select CODES`), run with a one-line note."""

from __future__ import annotations

import sys

from statemachine_engine.cli import validate
from statemachine_engine.cli.released_tools import run_renamed


def main(argv: list[str] | None = None) -> int:
    return run_renamed("statemachine-lint", "statemachine-validate", validate.main, argv)


if __name__ == "__main__":
    sys.exit(main())
