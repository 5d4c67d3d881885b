"""The fields a machine's log lines carry as separate values in JSON logs (`--log-json`):
machine, state, event, job id, attempt and step, read from the engine running in the current
context when a line is formatted. Lines logged elsewhere carry none of them."""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from statemachine_engine.core.engine import StateMachineEngine

_ENGINE: ContextVar[StateMachineEngine | None] = ContextVar("statemachine_log_engine", default=None)


def bind(engine: StateMachineEngine) -> Token[StateMachineEngine | None]:
    """Make `engine` the source of the fields of lines logged in this context (its task and
    the tasks it starts); undo with `unbind`."""
    return _ENGINE.set(engine)


def unbind(token: Token[StateMachineEngine | None]) -> None:
    _ENGINE.reset(token)


def current() -> dict[str, Any]:
    """The fields of the engine running in this context, or none."""
    engine = _ENGINE.get()
    if engine is None:
        return {}
    job = engine.runtime.job
    return {
        "machine": engine.machine_name,
        "state": engine.state,
        "event": engine.last_event,
        "job_id": job.job_id if job is not None else None,
        "attempt": job.attempts if job is not None else None,
        "step": engine.step,
    }
