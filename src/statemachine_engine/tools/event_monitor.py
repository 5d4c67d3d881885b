"""`python -m statemachine_engine.tools.event_monitor` (released module path): runs
`statemachine-events`."""

from __future__ import annotations

import sys

from statemachine_engine.cli.events import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
