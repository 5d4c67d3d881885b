"""docs/cli-reference.md is generated from the parsers; this fails when it has drifted."""

from __future__ import annotations

import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_cli_reference_is_up_to_date() -> None:
    generator = runpy.run_path(str(ROOT / "scripts" / "gen_cli_docs.py"))
    page = ROOT / "docs" / "cli-reference.md"
    assert page.read_text("utf-8") == generator["render"](), (
        "docs/cli-reference.md is out of date: run `make cli-docs`"
    )


def test_cli_reference_covers_every_console_script() -> None:
    import tomllib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    page = (ROOT / "docs" / "cli-reference.md").read_text("utf-8")
    for script in scripts:
        assert f"`{script}" in page, script
