"""SARIF 2.1.0 output of the validator, so code-scanning UIs annotate the YAML files."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from statemachine_engine import __version__
from statemachine_engine.tools.lint import CODES, ERROR, WARNING, Finding

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
HELP_URI = "https://statemachine-engine.invalid/tools/#{anchor}"
_LEVELS = {ERROR: "error", WARNING: "warning"}


def _rule(code: str) -> dict[str, Any]:
    severity, meaning = CODES[code]
    return {
        "id": code,
        "name": code,
        "shortDescription": {"text": meaning},
        "fullDescription": {"text": f"{code}: {meaning} ({severity})."},
        "help": {
            "text": f"{meaning}. See docs/tools.md, section {code}, for an example and the fix.",
            "markdown": f"**{code}** — {meaning}. See `docs/tools.md` ({code}).",
        },
        "helpUri": HELP_URI.format(anchor=code.lower()),
        "defaultConfiguration": {"level": _LEVELS.get(severity, "note")},
    }


def _uri(file: str | None, root: Path) -> str:
    if not file:
        return "unknown"
    path = Path(file)
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.resolve().as_uri()


def _result(finding: Finding, root: Path) -> dict[str, Any]:
    text = finding.message + (f" (hint: {finding.hint})" if finding.hint else "")
    region: dict[str, Any] = {}
    if finding.line is not None:
        region["startLine"] = finding.line
        if finding.column is not None:
            region["startColumn"] = finding.column
    location: dict[str, Any] = {"artifactLocation": {"uri": _uri(finding.file, root)}}
    if region:
        location["region"] = region
    return {
        "ruleId": finding.code,
        "level": _LEVELS.get(finding.severity, "note"),
        "message": {"text": text},
        "locations": [{"physicalLocation": location}],
    }


def sarif(findings: Iterable[Finding], *, root: Path | None = None) -> dict[str, Any]:
    """One SARIF log with one run of statemachine-validate: every rule it knows, and a
    result per finding (file paths relative to `root`, the working directory by default)."""
    base = Path.cwd() if root is None else root
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "statemachine-validate",
                        "version": __version__,
                        "informationUri": HELP_URI.format(anchor=""),
                        "rules": [_rule(code) for code in sorted(CODES)],
                    }
                },
                "results": [_result(finding, base) for finding in findings],
                "columnKind": "unicodeCodePoints",
            }
        ],
    }
