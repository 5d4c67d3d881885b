"""The `bash` action refuses a declared placeholder whose value does not fit, before the
command runs; the engine turns that ActionError into the `error` event."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from statemachine_engine.errors import ActionError


async def test_declared_int_with_a_hostile_value_fails_without_running(
    make_action: Any, context: dict[str, Any], tmp_path: Path
) -> None:
    ran = tmp_path / "ran"
    pwned = tmp_path / "pwned"
    action = make_action(f"type: bash\ncommand: \"[[ {{data.v:int}} -gt 1 ]]; touch '{ran}'\"")
    context["current_job"] = {"id": "j1", "data": {"v": f"a[$(touch '{pwned}')]"}}
    with pytest.raises(ActionError, match=r"placeholder \{data\.v:int\} must be a plain integer"):
        await action.execute(context)
    assert not ran.exists() and not pwned.exists()


async def test_declared_int_with_a_number_runs(
    make_action: Any, context: dict[str, Any], tmp_path: Path
) -> None:
    action = make_action('type: bash\ncommand: "[[ {data.v:int} -gt 10 ]] && echo big"')
    context["current_job"] = {"id": "j1", "data": {"v": 42}}
    assert await action.execute(context) == "job_done"
    assert context["stdout"] == "big\n"
