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
from statemachine_engine.cli.released_tools import (
    add_released_diagram_options,
    apply_released_diagram_options,
    print_notes,
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
    add_released_diagram_options(parser)
    add_actions_dir_argument(parser)
    add_logging_arguments(parser)
    return parser


def _main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    apply_released_diagram_options(args)
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
        if args.markdown_file is not None:
            args.markdown_file.parent.mkdir(parents=True, exist_ok=True)
            args.markdown_file.write_text(md.read_text(encoding="utf-8"), encoding="utf-8")
            print(args.markdown_file)
    print_notes(args)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(_main, argv, prog=PROG)


if __name__ == "__main__":
    sys.exit(main())
