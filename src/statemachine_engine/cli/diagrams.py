"""`statemachine-diagrams CONFIG`: the 1.0 name of `statemachine-fsm` (with 1.0's
`--output-dir`), run with a one-line note."""

from __future__ import annotations

import sys

from statemachine_engine.cli import fsm
from statemachine_engine.cli.released_tools import run_renamed


def main(argv: list[str] | None = None) -> int:
    return run_renamed("statemachine-diagrams", "statemachine-fsm", fsm.main, argv)


if __name__ == "__main__":
    sys.exit(main())
