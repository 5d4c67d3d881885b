"""`statemachine-lint FILE…`: the 1.0 name of `statemachine-validate` (same options:
`--strict`, `--format text|json`, `--select CODES`), run with a one-line note. Its
`--format json` keeps 1.0's shape: one entry per file with `issues`, `error_count` and
`warning_count`, which CI scripts parse."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from statemachine_engine.cli import validate
from statemachine_engine.cli.common import run_cli
from statemachine_engine.cli.released_tools import run_renamed

if TYPE_CHECKING:
    from statemachine_engine.tools.validate import Report

PROG = "statemachine-lint"


def released_json(report: Report, configs: list[str]) -> list[dict[str, Any]]:
    """The report as 1.0's lint JSON. 2.0's `info` findings keep that severity and count
    as neither errors nor warnings; `context` is `file:line:column`, `fix` the hint."""
    files: dict[str, list[dict[str, Any]]] = {config: [] for config in configs}
    for finding in report.findings:
        files.setdefault(finding.file or "-", []).append(
            {
                "code": finding.code,
                "severity": finding.severity,
                "message": finding.message,
                "file": finding.file,
                "context": finding.where,
                "fix": finding.hint,
            }
        )
    return [
        {
            "file": file,
            "issues": issues,
            "error_count": sum(i["severity"] == "error" for i in issues),
            "warning_count": sum(i["severity"] == "warning" for i in issues),
        }
        for file, issues in files.items()
    ]


def _main(argv: list[str]) -> int:
    parser = validate.build_parser()
    parser.prog = PROG
    return validate.run(parser.parse_args(argv), json_view=released_json)


def _lint(argv: list[str] | None) -> int:
    return run_cli(_main, argv, prog=PROG)


def main(argv: list[str] | None = None) -> int:
    return run_renamed(PROG, "statemachine-validate", _lint, argv)


if __name__ == "__main__":
    sys.exit(main())
