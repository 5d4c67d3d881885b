"""BaseAction: what every action, built-in or custom, implements."""

from __future__ import annotations

import dataclasses
import logging
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

from statemachine_engine.actions.params import Declaration, Emits, Param
from statemachine_engine.core.interpolate import render_value
from statemachine_engine.core.transitions import decide
from statemachine_engine.errors import ActionError

if TYPE_CHECKING:
    from statemachine_engine.core.runtime import Runtime

_MISSING: Any = object()

__all__ = ["BaseAction", "Declaration", "Emits", "Failure", "Param"]


class Failure(str):
    """An event name that is a failure outcome, with the reason for the job's error.

    `return Failure("not_found", "no such file: x")` fails the held job's attempt when the
    event fires a transition (or, without one, sends the machine to its `on_error` state).
    It is still a plain `str` for everything else."""

    reason: str

    def __new__(cls, event: str, reason: str | None = None) -> Failure:
        made = super().__new__(cls, event)
        made.reason = reason or event
        return made


class BaseAction(ABC):
    """An action runs on entering a state and returns an event name or None.

    `config` holds the action's parameters from YAML (flat, `params:` merged in). The engine
    sets `runtime` (store, clock, current job, outbox) before the first `execute`. Raising
    is fine: the engine turns any exception into the `error` event.
    """

    #: Context keys this action may set, for the load-time placeholder check.
    #: None means "cannot say" (disables that check for machines using the action).
    provides: ClassVar[frozenset[str] | None] = None

    #: True for an action that finishes at once, never waits, and whose effects are part of
    #: the step (a log line, context keys, the job ack, the outbox, a claim). The engine may
    #: then commit the step before it together with the next one (group commit). An action
    #: that waits, runs a process or acts outside the step must leave this False.
    instant: ClassVar[bool] = False

    #: Parameters and events, checked at load and read by the linter, the JSON Schema and
    #: the docs. The default declares nothing: any parameter is accepted, events unknown.
    declaration: ClassVar[Declaration] = Declaration()

    #: Event names this action returns that are failures (fail the held job's attempt):
    #: the simple way for a custom action to declare them.
    failure_events: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def declared(cls) -> Declaration:
        """The declaration with `failure_events` merged in."""
        own = cls.declaration
        return dataclasses.replace(
            own, failure_events=own.failure_events | cls.failure_events, instant=cls.instant
        )

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = dict(config)
        # The released package's actions read their parameters as config["params"]; keep
        # that view working beside the flat one (`params:` is never a parameter name).
        self.config["params"] = {k: v for k, v in config.items() if k != "description"}
        self.logger = logging.getLogger(f"{type(self).__module__}.{type(self).__name__}")
        self._runtime: Runtime | None = None

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            raise RuntimeError(f"{type(self).__name__} is not bound to a running machine")
        return self._runtime

    @runtime.setter
    def runtime(self, value: Runtime) -> None:
        self._runtime = value

    @abstractmethod
    async def execute(self, context: dict[str, Any]) -> str | None:
        """Do the work; return the name of the event to fire, or None."""

    def get_config_value(self, key: str, default: Any = None) -> Any:
        """A raw parameter value (placeholders not rendered)."""
        return self.config.get(key, default)

    def get_description(self) -> str:
        return str(self.config.get("description") or f"{type(self).__name__} action")

    def get_machine_name(self, context: dict[str, Any]) -> str:
        return str(context.get("machine_name", "unknown"))

    def param(self, key: str, context: dict[str, Any], default: Any = _MISSING) -> Any:
        """A parameter with its placeholders rendered (a whole-string placeholder keeps its
        type). A missing parameter without a default raises ActionError."""
        if key not in self.config:
            if default is _MISSING:
                raise ActionError(f"{type(self).__name__}: parameter {key!r} is required")
            return default
        return render_value(self.config[key], context)

    def event(self, key: str, default: str | None) -> str | None:
        """The event name configured under `key` (e.g. `success`), or the default."""
        value = self.config.get(key, default)
        return None if value is None else str(value)

    def event_if_handled(self, key: str, default: str, context: dict[str, Any]) -> str | None:
        """The event configured under `key`; else `default` when the current state has a
        transition on it, else None (a released-package default that was silent without
        one, see `Emits.if_handled`)."""
        if key in self.config:
            return self.event(key, None)
        state = str(context.get("current_state", ""))
        return default if decide(self.runtime.definition, state, default) is not None else None

    def failure(self, reason: str, key: str = "error", default: str = "error") -> Failure:
        """The failure event configured under `key` (default `error`), carrying `reason`."""
        return Failure(self.event(key, default) or default, reason)
