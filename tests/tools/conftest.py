"""Helpers for the tool tests: example configs and the test-only Node packages."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
EXAMPLES = ROOT / "examples"
NODE_DIR = Path(__file__).parent / "node"
EXAMPLE_CONFIGS = sorted(p for p in EXAMPLES.glob("*/*.yaml") if not p.name.startswith("system"))


def run_node(script: str, *args: str) -> list[dict[str, object]]:
    """Run a script of tests/tools/node; skip the test when Node or the packages are absent
    (`make install` provides them); on CI (`CI` set) their absence fails the test instead.
    Returns its JSON lines."""
    node = shutil.which("node")
    if node is None or not (NODE_DIR / "node_modules" / "mermaid").is_dir():
        message = "node or tests/tools/node/node_modules missing: run `make install`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    proc = subprocess.run(
        [node, str(NODE_DIR / script), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=NODE_DIR,
    )
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise AssertionError(f"{script} printed nothing: {proc.stderr}")
    return lines
