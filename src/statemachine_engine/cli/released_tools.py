"""The released 1.0 spellings of the tool commands (`statemachine-fsm`, `-validate`, and the
1.0 names `statemachine-diagrams` and `statemachine-lint`): accepted with the one-line note
`statemachine-db` gives for its 1.0 spellings."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from statemachine_engine.cli.common import EXIT_USAGE
from statemachine_engine.cli.released import add_note, note, print_notes

__all__ = [
    "RUN_IGNORED",
    "UI_IGNORED",
    "add_ignored_options",
    "add_released_diagram_options",
    "add_released_validate_options",
    "apply_released_diagram_options",
    "apply_released_validate_options",
    "note_ignored",
    "print_notes",
    "run_renamed",
]


def add_released_diagram_options(parser: argparse.ArgumentParser) -> None:
    """1.0's `--output-dir DIR`, `--old-format-only` and `--new-format-only`, hidden."""
    parser.add_argument("--output-dir", type=str, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--old-format-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--new-format-only", action="store_true", help=argparse.SUPPRESS)


def apply_released_diagram_options(args: argparse.Namespace) -> None:
    """Map the 1.0 diagram options onto ours, queueing a note for each one used. 1.0's
    `CONFIG OUT.md` (one config, then a Markdown file) sets `args.markdown_file`."""
    if args.output_dir is not None:
        args.out = Path(args.output_dir)
        note(args, "--output-dir DIR", "--out DIR")
    args.markdown_file = None
    if len(args.configs) == 2 and args.configs[1].endswith(".md"):
        args.markdown_file = Path(args.configs.pop())
        add_note(
            args,
            "the positional OUT.md is the 1.0 spelling; 2.0 also writes <out>/<name>/<name>.md",
        )
    for flag in ("old_format_only", "new_format_only"):
        if getattr(args, flag):
            option = "--" + flag.replace("_", "-")
            add_note(args, f"{option} is ignored: 2.0 writes one .mmd and one .md per machine")


def add_released_validate_options(parser: argparse.ArgumentParser) -> None:
    """1.0's `--no-color`, hidden: 2.0 never colours its output."""
    parser.add_argument("--no-color", action="store_true", help=argparse.SUPPRESS)


def apply_released_validate_options(args: argparse.Namespace) -> None:
    if args.no_color:
        add_note(args, "--no-color is ignored: 2.0 output has no colours")


def run_renamed(
    old: str, new: str, main: Callable[[list[str] | None], int], argv: list[str] | None
) -> int:
    """Run `new` for its 1.0 name `old`; the note follows unless the arguments were refused
    (exit 2), so a usage error stays one line."""
    code = main(argv)
    if code != EXIT_USAGE:
        print(f"note: {old} is the 1.0 name; use {new}", file=sys.stderr)
    return code


#: 1.0 options of `statemachine` with no 2.0 meaning: option → (takes a value, why ignored).
RUN_IGNORED = {
    "--event-socket-path": (True, "2.0 has no event socket; the UI reads the database"),
    "--control-socket-prefix": (
        True,
        "control sockets live in the runtime directory ($STATEMACHINE_RUNTIME_DIR)",
    ),
}
#: The same for `statemachine-ui`.
UI_IGNORED = {
    "--project-root": (True, "the UI reads machines and their definitions from the database"),
    "--no-websocket": (False, "the WebSocket stream is part of statemachine-ui"),
    "--event-socket-path": (True, "2.0 has no event socket; the UI reads the database"),
    "--websocket-port": (True, "the WebSocket stream is served on --port"),
}


def _dest(option: str) -> str:
    return "released_" + option.lstrip("-").replace("-", "_")


def add_ignored_options(
    parser: argparse.ArgumentParser, options: dict[str, tuple[bool, str]]
) -> None:
    """Accept 1.0 options that mean nothing in 2.0 (hidden from --help)."""
    for option, (takes_value, _why) in options.items():
        action = "store" if takes_value else "store_true"
        parser.add_argument(option, dest=_dest(option), action=action, help=argparse.SUPPRESS)


def note_ignored(args: argparse.Namespace, options: dict[str, tuple[bool, str]]) -> None:
    """Say on stderr, one line each, which of those options were given and why they do
    nothing (at start: these commands run until stopped)."""
    for option, (_takes_value, why) in options.items():
        if getattr(args, _dest(option), None) not in (None, False):
            print(f"note: {option} is ignored: {why}", file=sys.stderr)
