"""Exception hierarchy: every error the engine raises on purpose derives from StateMachineError."""

from __future__ import annotations


class StateMachineError(Exception):
    """Base class of all statemachine-engine errors."""


class ConfigError(StateMachineError):
    """A machine definition is invalid; carries the file position, a hint and, where the
    validator has a specific finding code for it, that code."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        hint: str | None = None,
        code: str | None = None,
    ) -> None:
        self.message = message
        self.code = code
        self.file = file
        self.line = line
        self.column = column
        self.hint = hint
        super().__init__(self.one_line())

    def one_line(self) -> str:
        where = ""
        if self.file is not None:
            where = self.file
            if self.line is not None:
                where += f":{self.line}"
                if self.column is not None:
                    where += f":{self.column}"
            where += ": "
        text = f"{where}{self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return text


class ActionError(StateMachineError):
    """An action failed in a way it reports as the `error` event."""


class PlaceholderError(ActionError):
    """A placeholder in an action parameter could not be resolved."""

    def __init__(self, key: str, message: str | None = None) -> None:
        self.key = key
        super().__init__(message or f"placeholder {{{key}}} has no value in this context")


class StoreError(StateMachineError):
    """The database could not do what was asked (unreachable, read-only, corrupt, ...)."""


class DuplicateJobError(StoreError):
    """A job with the same id already exists."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"job {job_id!r} already exists")


class MachineRunningError(StoreError):
    """A machine of this name already runs against the database (a start is refused)."""


class NotFoundError(StoreError):
    """A job, machine or event asked for does not exist."""


class TransportError(StateMachineError):
    """A control socket could not be created or used."""


class UsageError(StateMachineError):
    """Bad command-line input; CLIs print it as one line and exit 2."""


class StopTimeout(StoreError):
    """A store call stopped waiting for a locked or unreachable database because its machine
    is stopping (see `Store.give_up_waiting`): the call did nothing."""
