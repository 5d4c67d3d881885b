"""`statemachine-fsm CONFIG… [--out DIR]`: write a Mermaid diagram per machine definition."""

from __future__ import annotations

import sys
from pathlib import Path

from statemachine_engine.cli.common import (
    CliParser,
    add_actions_dir_argument,
    add_logging_arguments,
    add_version_argument,
    require_regular_file,
    run_cli,
)

PROG = "statemachine-fsm"
DEFAULT_OUT = Path("docs/fsm")


def build_parser() -> CliParser:
    parser = CliParser(
        prog=PROG,
        description="Write <out>/<config-name>/<config-name>.mmd and .md (Mermaid "
        "stateDiagram-v2) for each machine definition. Only states and transitions must be "
        "valid: actions and placeholders are not checked.",
    )
    add_version_argument(parser)
    parser.add_argument("configs", nargs="+", metavar="CONFIG", help="machine definitions")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, metavar="DIR", help="output directory (docs/fsm)"
    )
    parser.add_argument(
        "--stdout", action="store_true", help="print the diagrams instead of writing files"
    )
    add_actions_dir_argument(parser)
    add_logging_arguments(parser)
    return parser


def _main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from statemachine_engine.config import load_definition
    from statemachine_engine.core.loader import ActionLoader, default_actions_dirs
    from statemachine_engine.tools.diagram import mermaid, write_diagrams

    for config in args.configs:
        path = Path(config)
        require_regular_file(path, "a machine file")
        loader = ActionLoader(default_actions_dirs(args.actions_dir, path))
        definition = load_definition(path, loader, outline=True)
        if args.stdout:
            sys.stdout.write(mermaid(definition))
            continue
        mmd, md = write_diagrams(definition, args.out)
        print(f"{mmd}\n{md}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(_main, argv, prog=PROG)


if __name__ == "__main__":
    sys.exit(main())
