"""`statemachine-test CONFIG…`: generated coverage of machine definitions.

For every transition, the shortest run of jobs, events, clock moves and `bash` outcomes that
takes it is played in the in-process harness. Exit 0 when every transition was covered (or
cannot be generated, e.g. behind a custom action), 1 when one failed or is unreachable (with
`--strict` also when one is not generated), 2 for bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path

from statemachine_engine.cli.common import (
    CliParser,
    add_actions_dir_argument,
    add_logging_arguments,
    add_version_argument,
    fail,
    logging_configured,
    require_regular_file,
    run_cli,
)

PROG = "statemachine-test"


def build_parser() -> CliParser:
    parser = CliParser(
        prog=PROG,
        description="Generated coverage: take every transition in the in-process harness.",
    )
    add_version_argument(parser)
    parser.add_argument("configs", nargs="+", metavar="CONFIG", help="machine definitions")
    parser.add_argument(
        "--emit-pytest",
        metavar="DIR",
        help="also write each generated run as an editable pytest file into DIR",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text", help="(text)")
    parser.add_argument(
        "--strict", action="store_true", help="transitions not generated count as failures"
    )
    add_actions_dir_argument(parser)
    add_logging_arguments(parser, level="CRITICAL")
    return parser


def _main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    for config in args.configs:
        require_regular_file(config, "a machine file")
    with logging_configured(args.log_level, json_lines=args.log_json):
        return asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> int:
    from statemachine_engine.config import load_definition
    from statemachine_engine.core.loader import ActionLoader, default_actions_dirs
    from statemachine_engine.errors import ConfigError
    from statemachine_engine.testing.coverage import coverage
    from statemachine_engine.testing.emit import emit_pytest

    configs = [Path(c) for c in args.configs]
    dirs = [Path(d) for d in args.actions_dir or ()]
    reports = []
    code = 0
    with tempfile.TemporaryDirectory(prefix="sm-test-") as tmp:
        for index, config in enumerate(configs):
            try:
                loader = ActionLoader(dirs or default_actions_dirs([], config))
                definition = load_definition(config, loader)
            except ConfigError as exc:
                fail(str(exc))
            report = await coverage(config, tmp_path=Path(tmp) / str(index), actions_dirs=dirs)
            reports.append(report)
            if args.emit_pytest:
                emit_pytest(report, definition, Path(args.emit_pytest))
            bad = not report.ok or (args.strict and report.count("not generated"))
            code = max(code, 1 if bad else 0)
    if args.format == "json":
        json.dump([_as_dict(r) for r in reports], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return code
    for report in reports:
        total = len(report.results)
        print(
            f"{report.source}: {report.count('covered')}/{total} transitions covered,"
            f" {report.count('failed')} failed, {report.count('unreachable')} unreachable,"
            f" {report.count('not generated')} not generated"
        )
        for result in report.results:
            if result.status != "covered":
                print(f"  {result.status}: {result.label}: {result.detail}")
    return code


def _as_dict(report: object) -> dict[str, object]:
    from statemachine_engine.testing.coverage import Report

    assert isinstance(report, Report)
    return {
        "config": report.source,
        "transitions": [
            {
                "transition": r.label,
                "line": r.transition.pos.line,
                "status": r.status,
                "detail": r.detail,
                "steps": [s.label for s in r.path],
            }
            for r in report.results
        ],
    }


def main(argv: list[str] | None = None) -> int:
    return run_cli(_main, argv, prog=PROG)


if __name__ == "__main__":
    sys.exit(main())
