"""1.0's engine API: `StateMachineEngine(machine_name=…)`, then `await load_config(path)`
and `await execute_state_machine(initial_context)`. `StateMachineEngine` called without a
definition builds this class; it loads the file as `statemachine` does and runs 2.0's loop."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from statemachine_engine.core.engine import StateMachineEngine

ADVICE = (
    "StateMachineEngine(machine_name=...) with load_config()/execute_state_machine() is the "
    "1.0 API; use StateMachineEngine(load_definition(path, loader), name) and run()"
)


class ReleasedEngine(StateMachineEngine):
    """A StateMachineEngine built in two steps, as in 1.0. `event_socket_path` and
    `control_socket_prefix` are accepted and ignored (2.0 has no event socket; control
    sockets live in the runtime directory); `db_url` is 2.0's `--db`."""

    def __init__(
        self,
        machine_name: str | None = None,
        actions_root: str | None = None,
        event_socket_path: str | None = None,
        control_socket_prefix: str | None = None,
        *,
        db_url: str | None = None,
    ) -> None:
        warnings.warn(ADVICE, DeprecationWarning, stacklevel=2)
        self._requested_name = machine_name
        self._actions_root = actions_root
        self._requested_db = db_url
        self._loaded = False
        self.config_name: str | None = None

    @property
    def current_state(self) -> str | None:
        """1.0's name for the state the machine is in (None before load_config)."""
        return self.state if self._loaded else None

    async def load_config(self, yaml_path: str) -> None:
        """Load and check the machine file; a missing file raises FileNotFoundError, any
        other problem a ConfigError naming file and line."""
        from statemachine_engine.config import load_definition
        from statemachine_engine.core.loader import ActionLoader, default_actions_dirs

        path = Path(yaml_path)
        if not path.exists():
            raise FileNotFoundError(f"Configuration file not found: {yaml_path}")
        given = [self._actions_root] if self._actions_root else []
        loader = ActionLoader(default_actions_dirs(given, path))
        definition = load_definition(path, loader)
        name = self._requested_name or definition.metadata.get("machine_name") or "unknown"
        super().__init__(definition, str(name), loader=loader, db_url=self._requested_db)
        self.config_name = path.stem
        self._loaded = True

    async def execute_state_machine(self, initial_context: dict[str, Any] | None = None) -> int:
        """Run until a final state or stop(), with `initial_context` merged into the
        context; returns 2.0's exit code (0 at a final state or on stop)."""
        if not self._loaded:
            raise RuntimeError("No configuration loaded. Call load_config() first.")
        self.context.update(initial_context or {})
        return await self.run()
