"""How a failed attempt reads in the log: one line with the exit code and the first line of
stderr when a command failed it, else the first line of its reason; the job id, attempt and
exit code also as fields (JSON logs)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from statemachine_engine.database.records import ActionRun


def first_line(text: str) -> str:
    """The first non-blank line of `text`, marked when more lines follow."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    return lines[0] + (" [...]" if len(lines) > 1 else "")


def failure_summary(error: str | None, runs: Sequence[ActionRun]) -> tuple[str, dict[str, Any]]:
    """The reason as logged and the fields of the line, from the attempt's error and the
    actions of the failing step (the last command with a non-zero exit code, if any)."""
    failed = [r for r in runs if r.exit_code not in (None, 0)]
    if failed:
        run = failed[-1]
        stderr = run.stderr_tail.strip()
        text = f"exit code {run.exit_code}" + (f": {first_line(stderr)}" if stderr else "")
        return text, {"exit_code": run.exit_code}
    return first_line(error or "error") or "error", {"exit_code": None}
