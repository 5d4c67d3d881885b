"""`python -m statemachine_engine.cli`: with arguments, run one machine as `statemachine`
does (the released package's `python -m statemachine_engine.cli CONFIG`); without, list
the console scripts."""

from __future__ import annotations

import sys
from importlib.metadata import entry_points

PROGRAMS = {
    "statemachine": "run one machine (also: python -m statemachine_engine.cli CONFIG)",
    "statemachine-cli": "jobs, events, machine status and history (alias statemachine-db)",
    "statemachine-up": "start, watch and stop a system of machines",
    "statemachine-ui": "the monitoring web UI",
    "statemachine-validate": "check machine files",
    "statemachine-fsm": "draw a machine's diagram",
    "statemachine-test": "run a machine's scenario tests",
    "statemachine-events": "tail the live event stream in the terminal",
}


def describe() -> str:
    """The console scripts installed with this package, one per line."""
    installed = {
        ep.name
        for ep in entry_points(group="console_scripts")
        if ep.value.startswith("statemachine_engine.")
    }
    names = [name for name in PROGRAMS if name in installed or not installed]
    width = max(len(name) for name in names) + 2
    lines = [f"  {name:<{width}}{PROGRAMS[name]}" for name in names]
    return "\n".join(["statemachine-engine console scripts:", *lines])


def main(argv: list[str] | None = None) -> int:
    """Run a machine when given arguments; otherwise print the console scripts."""
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print(describe())
        return 0
    from statemachine_engine.cli.run import main as run_main

    return run_main(args)


if __name__ == "__main__":
    sys.exit(main())
