"""`statemachine init [DIR] [--example NAME]`: write a starter project from one of the
examples that ship inside the package, ready for `statemachine up system.yaml`."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

from statemachine_engine.cli.common import CliParser, add_version_argument, fail, run_cli
from statemachine_engine.config.yamlsource import plain, read_yaml
from statemachine_engine.tools.system import load_system

PROG = "statemachine init"
#: Two machines with an event between them: the quickstart's system.
DEFAULT_EXAMPLE = "controller_worker"
#: The starter project's database, relative to its system file.
PROJECT_DB = "sqlite:///data/statemachine.db"
#: Files of an example that make sense only inside the repository (`make demo`).
REPO_ONLY = frozenset({"demo.py"})
SKIPPED_DIRS = frozenset({"__pycache__", "data"})


def examples_root() -> Path:
    """Where the examples are: inside the installed package (wheels carry them), else the
    `examples/` folder of a source checkout (an editable install)."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "examples", package.parents[1] / "examples"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"no examples found under {package}")


def example_names(root: Path) -> list[str]:
    """The examples a project can start from: the folders holding a system.yaml."""
    return sorted(p.parent.name for p in root.glob("*/system.yaml"))


def build_parser() -> CliParser:
    parser = CliParser(
        prog=PROG,
        description="Write a working starter project (machine files, system.yaml with the UI,"
        " README) into DIR, from one of the bundled examples.",
    )
    add_version_argument(parser)
    parser.add_argument(
        "dir", nargs="?", default=".", metavar="DIR", help="where to write it (default: here)"
    )
    parser.add_argument(
        "--example",
        default=DEFAULT_EXAMPLE,
        metavar="NAME",
        help=f"which example to start from (default {DEFAULT_EXAMPLE}; --list shows all)",
    )
    parser.add_argument("--list", action="store_true", help="list the examples and exit")
    parser.add_argument("--debug", action="store_true", help="print tracebacks on failure")
    return parser


def system_text(example: Path) -> str:
    """The project's system.yaml: the example's, with the UI on and the database in the
    project (both relative to the file)."""
    source = example / "system.yaml"
    load_system(source)  # a broken bundled example fails here, not at `up`
    given: dict[str, Any] = plain(read_yaml(source.read_text("utf-8"), str(source)))
    given.pop("workdir", None)
    spec = {"name": given.pop("name", example.name), "db": given.pop("db", PROJECT_DB)}
    spec.update(given, ui=True)
    header = (
        f"# Written by `statemachine init --example {example.name}`. Run every machine and the\n"
        "# monitoring UI (http://127.0.0.1:3001) from this folder:\n"
        "#   statemachine up system.yaml\n"
        "# Paths in this file are relative to it; machines run in the folder `up` starts in.\n"
    )
    return header + yaml.safe_dump(spec, sort_keys=False, default_flow_style=False)


def readme_text(example: Path) -> str:
    """The project's README: how to run it, then the example's own README with its
    repository paths made relative to the project."""
    own = example / "README.md"
    body = own.read_text("utf-8") if own.is_file() else f"# {example.name}\n"
    title, _, body = body.replace(f"examples/{example.name}/", "").partition("\n")
    intro = (
        f"Started with `statemachine init --example {example.name}`.\n\n"
        "```console\n"
        "$ statemachine up system.yaml   # every machine, and the UI on http://127.0.0.1:3001\n"
        "```\n\n"
        "Ctrl-C stops everything. `statemachine-cli` run in this folder uses the same\n"
        "database, `data/statemachine.db` (its default). The example's own description\n"
        "follows; where it says to work from the repository root, work in this folder.\n\n"
    )
    return f"{title}\n\n{intro}{body.lstrip()}"


def write_project(dest: Path, example: Path) -> list[Path]:
    """Copy the example's machine files and actions into `dest` (empty or new) and write
    system.yaml and README.md; the files written, relative to `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for path in sorted(example.rglob("*")):
        rel = path.relative_to(example)
        if path.is_dir() or SKIPPED_DIRS.intersection(rel.parts) or rel.suffix == ".pyc":
            continue
        if rel.as_posix() in REPO_ONLY or rel.as_posix() in ("system.yaml", "README.md"):
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest / rel)
        written.append(rel)
    (dest / "system.yaml").write_text(system_text(example), "utf-8")
    (dest / "README.md").write_text(readme_text(example), "utf-8")
    return sorted([*written, Path("system.yaml"), Path("README.md")])


def _check_destination(dest: Path) -> None:
    if dest.exists() and not dest.is_dir():
        fail(f"{dest}: exists and is not a directory; give a new or empty DIR")
    if dest.is_dir() and any(dest.iterdir()):
        fail(f"{dest}: directory is not empty; give a new or empty DIR (nothing was written)")


def _main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    root = examples_root()
    names = example_names(root)
    if args.list:
        print("\n".join(names))
        return 0
    if args.example not in names:
        fail(f"--example: no example {args.example!r}; choose from {', '.join(names)}")
    dest = Path(args.dir)
    _check_destination(dest)
    written = write_project(dest, root / args.example)
    print(f"wrote {len(written)} files to {dest}/ (example {args.example}):")
    for rel in written:
        print(f"  {rel.as_posix()}")
    go = "" if dest.resolve() == Path.cwd().resolve() else f"  cd {dest}\n"
    print(
        "next steps:\n"
        f"{go}"
        "  statemachine up system.yaml     # every machine, and the UI on http://127.0.0.1:3001\n"
        "  README.md shows what to send it (run those commands in this folder)"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(_main, argv, prog=PROG)


if __name__ == "__main__":
    sys.exit(main())
