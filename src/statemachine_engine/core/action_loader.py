"""1.0's `statemachine_engine.core.action_loader`: `ActionLoader(actions_root)` with
`load_action_class`, `get_available_actions`, `clear_cache`, `rediscover`, and the module
functions `get_action_loader` and `load_action_class`, over 2.0's `core.loader`."""

from __future__ import annotations

import warnings

from statemachine_engine.actions.base import BaseAction
from statemachine_engine.core import loader

ADVICE = "core.action_loader is the 1.0 API; use statemachine_engine.core.ActionLoader([dirs])"


class ActionLoader(loader.ActionLoader):
    """2.0's loader over one optional custom actions directory, with 1.0's method names."""

    def __init__(self, actions_root: str | None = None) -> None:
        warnings.warn(ADVICE, DeprecationWarning, stacklevel=2)
        super().__init__([actions_root] if actions_root else [])

    def load_action_class(self, action_type: str) -> type[BaseAction] | None:
        """The class for `action_type`, or None when there is none (1.0's contract)."""
        try:
            return self.resolve(action_type)
        except LookupError:
            return None

    def get_available_actions(self) -> list[str]:
        return sorted(self.names())

    def clear_cache(self) -> None:
        self._classes.clear()
        self._failures.clear()

    def rediscover(self) -> None:
        self.clear_cache()


_shared: dict[str | None, ActionLoader] = {}


def get_action_loader(actions_root: str | None = None) -> ActionLoader:
    """One shared loader per actions directory."""
    if actions_root not in _shared:
        _shared[actions_root] = ActionLoader(actions_root)
    return _shared[actions_root]


def load_action_class(action_type: str) -> type[BaseAction] | None:
    return get_action_loader().load_action_class(action_type)
