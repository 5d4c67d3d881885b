"""`python -m statemachine_engine.ui.cli` (released module path): runs `statemachine-ui`."""

from __future__ import annotations

import sys

from statemachine_engine.cli.ui import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
