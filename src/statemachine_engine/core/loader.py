"""ActionLoader: the action registry fed by built-ins, actions directories and entry points."""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import logging
import re
import sys
import traceback
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from statemachine_engine.actions.base import BaseAction
from statemachine_engine.actions.builtin import BUILTINS
from statemachine_engine.actions.params import Declaration
from statemachine_engine.config.model import ActionSpec
from statemachine_engine.errors import ConfigError

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "statemachine_engine.actions"
_TYPE_NAME = re.compile(r"[a-z][a-z0-9_]{0,99}")


def class_name(action_type: str) -> str:
    """`process_file` → `ProcessFileAction`."""
    return "".join(part.capitalize() for part in action_type.split("_")) + "Action"


class ActionLoader:
    """Resolves `type:` names to BaseAction classes; imports nothing outside the built-ins,
    the configured directories (`<type>_action.py`) and the entry-point group."""

    def __init__(
        self,
        actions_dirs: Iterable[str | Path] = (),
        *,
        entry_points: Iterable[importlib.metadata.EntryPoint] | None = None,
    ) -> None:
        """`entry_points` replaces the installed `statemachine_engine.actions` group (tests,
        embedding); by default the group is read from the installed distributions. A single
        path (1.0's `ActionLoader("actions")`) is one directory, not a sequence of letters."""
        if isinstance(actions_dirs, str | Path):
            actions_dirs = [actions_dirs]
        self.actions_dirs = tuple(Path(d).resolve() for d in actions_dirs)
        self._classes: dict[str, type[BaseAction]] = {}
        self._failures: dict[str, ConfigError] = {}
        if entry_points is None:
            entry_points = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
        self._entry_points = {ep.name: ep for ep in entry_points}

    def names(self) -> frozenset[str]:
        """Every type name that may resolve: built-ins, entry points, `<type>_action.py`."""
        found = set(BUILTINS) | set(self._entry_points)
        for directory in self.actions_dirs:
            if directory.is_dir():
                found.update(p.name[: -len("_action.py")] for p in directory.glob("*_action.py"))
        return frozenset(n for n in found if _TYPE_NAME.fullmatch(n))

    def provides(self, action_type: str) -> frozenset[str] | None:
        """Context keys the action may set; a module that fails to load is a ConfigError."""
        try:
            return self.resolve(action_type).provides
        except ConfigError:
            raise
        except Exception as exc:
            raise ConfigError(str(exc)) from None

    def declaration(self, action_type: str) -> Declaration:
        """What the action type declares; a module that fails to load is a ConfigError."""
        try:
            return self.resolve(action_type).declared()
        except ConfigError:
            raise
        except Exception as exc:
            raise ConfigError(str(exc)) from None

    def resolve(self, action_type: str) -> type[BaseAction]:
        """The class for a type name. Raises LookupError for an invalid or unknown name or a
        class that is not a BaseAction, ConfigError (naming the file and line) for a
        module that fails to import."""
        if action_type in self._classes:
            return self._classes[action_type]
        if not isinstance(action_type, str) or not _TYPE_NAME.fullmatch(action_type):
            raise LookupError(f"invalid action type name {str(action_type)[:100]!r}")
        if action_type in self._failures:
            raise self._failures[action_type]
        try:
            cls = self._find(action_type)
        except ConfigError as exc:
            self._failures[action_type] = exc
            raise
        if not (isinstance(cls, type) and issubclass(cls, BaseAction)):
            raise LookupError(
                f"action {action_type!r} resolves to {cls!r}, which is not a BaseAction subclass"
            )
        self._classes[action_type] = cls
        return cls

    def _find(self, action_type: str) -> Any:
        if action_type in BUILTINS:
            module_name, attr = BUILTINS[action_type].split(":")
            module = importlib.import_module(f"statemachine_engine.actions.builtin.{module_name}")
            return getattr(module, attr)
        for directory in self.actions_dirs:
            path = directory / f"{action_type}_action.py"
            if path.is_file():
                name = class_name(action_type)
                module = self._import_file(path)
                if not hasattr(module, name):
                    raise LookupError(f"{path} defines no class {name}")
                return getattr(module, name)
        if action_type in self._entry_points:
            entry_point = self._entry_points[action_type]
            try:
                return entry_point.load()
            except (Exception, SystemExit) as exc:
                raise _load_error(f"entry point {entry_point.value!r}", exc, None) from None
        raise LookupError(f"unknown action type {action_type!r}")

    def _import_file(self, path: Path) -> Any:
        digest = hashlib.sha256(str(path).encode("utf-8", "surrogateescape")).hexdigest()[:12]
        module_name = f"statemachine_engine_user_actions.{path.stem}_{digest}"
        if module_name in sys.modules:
            return sys.modules[module_name]
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise LookupError(f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except (Exception, SystemExit) as exc:
            del sys.modules[module_name]
            raise _load_error(str(path), exc, path) from None
        return module

    def create(self, spec: ActionSpec) -> BaseAction:
        """Instantiate the action a spec names; errors name the spec's file position."""
        try:
            cls = self.resolve(spec.type)
            params = dict(spec.params)
            if spec.description is not None:
                params["description"] = spec.description
            return cls(params)
        except Exception as exc:
            raise ConfigError(
                f"cannot load action {spec.type!r}: {exc}",
                file=spec.pos.file,
                line=spec.pos.line,
                column=spec.pos.column,
            ) from None


def _load_error(what: str, exc: BaseException, path: Path | None) -> ConfigError:
    """A ConfigError for a module that raised on import, at the line that raised."""
    line: int | None = None
    column: int | None = None
    if isinstance(exc, SyntaxError) and exc.filename == str(path):
        line, column = exc.lineno, exc.offset
    elif path is not None:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(path)]
        line = frames[-1].lineno if frames else None
    detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return ConfigError(
        f"importing {what if path is None else 'the action module'} failed: {detail}",
        file=None if path is None else str(path),
        line=line,
        column=column,
        hint="fix the module; it must import without errors",
    )


def default_actions_dirs(given: Iterable[str | Path], config: Path) -> list[Path]:
    """The directories custom actions are loaded from: those given, else `./actions` and
    the config file's `actions/` directory where they exist."""
    chosen = [Path(d) for d in given]
    if chosen:
        return chosen
    found: list[Path] = []
    for candidate in (Path("actions"), config.parent / "actions"):
        if candidate.is_dir() and candidate.resolve() not in [f.resolve() for f in found]:
            found.append(candidate)
    return found
