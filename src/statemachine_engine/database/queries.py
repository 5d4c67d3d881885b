"""Named SQL statements: each dialect keeps every statement the store runs in one file,
`database/queries/<dialect>.sql`, as blocks that start with a `-- name: <name>` line.

The store's logic (jobs, events, machines, steps) is written once and asks for statements by
name with a dict of parameters; only the text differs per dialect (`:name` parameters on
SQLite, `%(name)s` on PostgreSQL). A block whose body is only comments is a statement that
dialect does not need (nothing is sent).

A statement may have variants: `claim+job_type+machine_type` is the `claim` block with the
blocks `claim.job_type` and `claim.machine_type` put where its text says `/*filters*/`
(fixed fragments only: values are always parameters).
"""

from __future__ import annotations

import re
from importlib import resources

from statemachine_engine.errors import StoreError

_BLOCK = re.compile(r"^-- name: *([A-Za-z0-9_.]+) *$", re.MULTILINE)
_COMMENT = re.compile(r"^\s*--.*$", re.MULTILINE)
FILTERS = "/*filters*/"


def parse(text: str, source: str) -> dict[str, str]:
    """The named blocks of a queries file, each without its comment lines."""
    statements: dict[str, str] = {}
    marks = list(_BLOCK.finditer(text))
    for mark, after in zip(marks, [*marks[1:], None], strict=True):
        name = mark.group(1)
        if name in statements:
            raise StoreError(f"{source}: statement {name!r} is defined twice")
        body = text[mark.end() : after.start() if after else len(text)]
        statements[name] = _COMMENT.sub("", body).strip().rstrip(";").strip()
    return statements


class Queries:
    """The statements of one dialect, by name (variants built once and kept)."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        source = resources.files("statemachine_engine.database").joinpath(
            "queries", f"{dialect}.sql"
        )
        self._text = parse(source.read_text(encoding="utf-8"), f"queries/{dialect}.sql")
        self._built: dict[str, str] = {}

    def names(self) -> set[str]:
        return set(self._text)

    def __getitem__(self, name: str) -> str:
        built = self._built.get(name)
        if built is None:
            built = self._built[name] = self._build(name)
        return built

    def _build(self, name: str) -> str:
        base, *parts = name.split("+")
        text = self._lookup(base)
        if not parts:
            return text
        if FILTERS not in text:
            raise StoreError(f"{self.dialect} statement {base!r} takes no filters")
        return text.replace(FILTERS, " ".join(self._lookup(f"{base}.{p}") for p in parts))

    def _lookup(self, name: str) -> str:
        try:
            return self._text[name]
        except KeyError:
            raise StoreError(f"no {self.dialect} statement named {name!r}") from None
