"""`python -m statemachine_engine.monitoring.websocket_server` (released module path): the
WebSocket stream is served by `statemachine-ui`, which this runs (with a one-line note)."""

from __future__ import annotations

import sys

from statemachine_engine.cli.released_tools import run_renamed
from statemachine_engine.cli.ui import main as ui_main


def main(argv: list[str] | None = None) -> int:
    return run_renamed(
        "statemachine_engine.monitoring.websocket_server", "statemachine-ui", ui_main, argv
    )


if __name__ == "__main__":
    sys.exit(main())
