"""`statemachine-validate CONFIG…`: load-time errors and lint findings, with stable codes.

Exit 0 when clean, 1 when there are lint findings, 2 when a definition does not load.
A system file (top-level `machines:`) stands for the configs it lists, under their names.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from statemachine_engine.cli.common import (
    CliParser,
    add_actions_dir_argument,
    add_logging_arguments,
    fail,
    require_regular_file,
    run_cli,
)

PROG = "statemachine-validate"


def build_parser() -> CliParser:
    parser = CliParser(
        prog=PROG,
        description="Check machine definitions: load-time errors plus lint findings.",
    )
    parser.add_argument(
        "configs", nargs="*", metavar="CONFIG", help="machine definitions or system files"
    )
    parser.add_argument(
        "--format", choices=("text", "json"), default="text", help="output format (text)"
    )
    parser.add_argument("--strict", action="store_true", help="info findings count as failures too")
    parser.add_argument(
        "--schema", action="store_true", help="print the JSON Schema of machine files and exit"
    )
    add_actions_dir_argument(parser)
    add_logging_arguments(parser)
    return parser


def _main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.schema:
        from statemachine_engine.tools.schema import schema_text

        sys.stdout.write(schema_text())
        return 0
    if not args.configs:
        fail("give at least one CONFIG (or --schema)")
    from statemachine_engine.tools.validate import validate

    for config in args.configs:
        require_regular_file(config, "a machine file")

    report = validate([Path(c) for c in args.configs], actions_dirs=args.actions_dir)
    if args.format == "json":
        json.dump(report.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for finding in report.findings:
            print(finding)
        print(report.summary(), file=sys.stderr)
    return report.exit_code(strict=args.strict)


def main(argv: list[str] | None = None) -> int:
    return run_cli(_main, argv, prog=PROG)


if __name__ == "__main__":
    sys.exit(main())
