"""The input limits refuse nothing the released package's own examples contain, and our
examples validate clean with --strict. The released sdist is fetched at test time into a
cache outside the repository (never committed) by the `released` fixture in tests/conftest.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from statemachine_engine.tools.validate import validate

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def test_released_examples_still_load(released: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each example's files validated together, from the sdist's root as its scripts run
    them: patient-records.yaml's placeholders come from the controller's `context_vars`,
    and log lines with keys nothing sets are warnings (SM124), not errors."""
    monkeypatch.chdir(released)
    examples = sorted({c.parent.parent for c in (released / "examples").glob("*/config/*.yaml")})
    assert len(examples) == 5
    for example in examples:
        configs = sorted((example / "config").glob("*.yaml"))
        report = validate(configs, actions_dirs=[example / "actions"])
        errors = [str(f) for f in report.findings if f.severity == "error"]
        assert not errors, errors


def test_a_template_alone_does_not_know_its_spawners_keys(released: Path) -> None:
    config = released / "examples/patient_records/config/patient-records.yaml"
    report = validate([config])
    errors = [f.message for f in report.findings if f.severity == "error"]
    assert errors == ["unknown placeholder root 'report_id' in '{report_id}'"]


def test_our_examples_validate_clean_with_strict() -> None:
    for system in sorted((ROOT / "examples").glob("*/system.yaml")):
        result = subprocess.run(
            [str(BIN / "statemachine-validate"), "--strict", str(system)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=system.parent,
        )
        assert result.returncode == 0, (system, result.stdout[-2000:], result.stderr[-2000:])
