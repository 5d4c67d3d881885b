"""`statemachine-validate CONFIG…`: load-time errors and lint findings, with stable codes.

Exit 0 when clean, 1 when there are lint findings, 2 when a definition does not load.
A system file (top-level `machines:`) stands for the configs it lists, under their names.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from statemachine_engine.cli.common import (
    CliParser,
    add_actions_dir_argument,
    add_logging_arguments,
    add_version_argument,
    fail,
    require_regular_file,
    run_cli,
)
from statemachine_engine.cli.released_tools import (
    add_released_validate_options,
    apply_released_validate_options,
    print_notes,
)

if TYPE_CHECKING:
    from statemachine_engine.tools.validate import Report

PROG = "statemachine-validate"
JsonView = Callable[["Report", list[str]], Any]


def build_parser() -> CliParser:
    parser = CliParser(
        prog=PROG,
        description="Check machine definitions: load-time errors plus lint findings.",
    )
    add_version_argument(parser)
    parser.add_argument(
        "configs", nargs="*", metavar="CONFIG", help="machine definitions or system files"
    )
    parser.add_argument(
        "--format",
        choices=("text", "json", "sarif"),
        default="text",
        help="output format: text (default), json, or sarif (SARIF 2.1.0 for code scanning)",
    )
    parser.add_argument("--strict", action="store_true", help="info findings count as failures too")
    parser.add_argument(
        "--select",
        type=_codes,
        default=None,
        metavar="CODES",
        help="report only these codes (comma-separated, e.g. SM105,SM109)",
    )
    parser.add_argument(
        "--ignore", type=_codes, default=(), metavar="CODES", help="do not report these codes"
    )
    parser.add_argument(
        "--quiet", action="store_true", help="text format: no summary line, only findings"
    )
    parser.add_argument(
        "--schema", action="store_true", help="print the JSON Schema of machine files and exit"
    )
    add_actions_dir_argument(parser)
    add_logging_arguments(parser)
    add_released_validate_options(parser)
    return parser


def _main(argv: list[str]) -> int:
    return run(build_parser().parse_args(argv))


def run(args: argparse.Namespace, json_view: JsonView | None = None) -> int:
    """Check the files `args` name and print the report; `json_view(report, configs)` is
    what `--format json` prints (default: the report's own dictionary)."""
    apply_released_validate_options(args)
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
    report = report.only(select=args.select, ignore=args.ignore)
    if args.format == "json":
        view = report.to_dict() if json_view is None else json_view(report, args.configs)
        json.dump(view, sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif args.format == "sarif":
        from statemachine_engine.tools.sarif import sarif

        json.dump(sarif(report.findings), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for finding in report.findings:
            print(finding)
        if not args.quiet:
            print(report.summary(), file=sys.stderr)
    print_notes(args)
    return report.exit_code(strict=args.strict)


def _codes(text: str) -> tuple[str, ...]:
    """argparse type: comma-separated finding codes, each one the validator knows."""
    from statemachine_engine.tools.lint import CODES

    codes = tuple(code.strip().upper() for code in text.split(",") if code.strip())
    unknown = [code for code in codes if code not in CODES]
    if unknown or not codes:
        raise argparse.ArgumentTypeError(
            f"unknown code {', '.join(unknown) or repr(text)} (known: SM001, SM101...)"
        )
    return codes


def main(argv: list[str] | None = None) -> int:
    return run_cli(_main, argv, prog=PROG)


if __name__ == "__main__":
    sys.exit(main())
