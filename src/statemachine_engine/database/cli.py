"""`python -m statemachine_engine.database.cli COMMAND` (released module path): runs
`statemachine-db`, the same program as `statemachine-cli`."""

from __future__ import annotations

import sys

from statemachine_engine.cli.db import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
