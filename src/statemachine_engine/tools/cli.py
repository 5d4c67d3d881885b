"""`python -m statemachine_engine.tools.cli CONFIG` (released module path): runs
`statemachine-diagrams`, the 1.0 name of `statemachine-fsm`."""

from __future__ import annotations

import sys

from statemachine_engine.cli.diagrams import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
