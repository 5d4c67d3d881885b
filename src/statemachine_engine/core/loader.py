"""ActionLoader: the action registry fed by built-ins, actions directories and entry points."""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import logging
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from statemachine_engine.actions.base import BaseAction
from statemachine_engine.actions.builtin import BUILTINS
from statemachine_engine.config.model import ActionSpec
from statemachine_engine.errors import ConfigError

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "statemachine_engine.actions"
_TYPE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,99}$")


def class_name(action_type: str) -> str:
    """`process_file` → `ProcessFileAction`."""
    return "".join(part.capitalize() for part in action_type.split("_")) + "Action"


class ActionLoader:
    """Resolves `type:` names to BaseAction classes; imports nothing outside the built-ins,
    the configured directories (`<type>_action.py`) and the entry-point group."""

    def __init__(self, actions_dirs: Iterable[str | Path] = ()) -> None:
        self.actions_dirs = tuple(Path(d).resolve() for d in actions_dirs)
        self._classes: dict[str, type[BaseAction]] = {}
        self._entry_points = {
            ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
        }

    def names(self) -> frozenset[str]:
        found = set(BUILTINS) | set(self._entry_points)
        for directory in self.actions_dirs:
            if directory.is_dir():
                found.update(p.name[: -len("_action.py")] for p in directory.glob("*_action.py"))
        return frozenset(n for n in found if _TYPE_NAME.match(n))

    def provides(self, action_type: str) -> frozenset[str] | None:
        return self.resolve(action_type).provides

    def resolve(self, action_type: str) -> type[BaseAction]:
        """The class for a type name; raises LookupError when it cannot be found."""
        if action_type in self._classes:
            return self._classes[action_type]
        if not _TYPE_NAME.match(action_type):
            raise LookupError(f"invalid action type name {action_type!r}")
        cls = self._find(action_type)
        if not (isinstance(cls, type) and issubclass(cls, BaseAction)):
            raise LookupError(f"action {action_type!r} does not resolve to a BaseAction subclass")
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
                return getattr(self._import_file(path), class_name(action_type), None)
        if action_type in self._entry_points:
            return self._entry_points[action_type].load()
        raise LookupError(f"unknown action type {action_type!r}")

    def _import_file(self, path: Path) -> Any:
        module_name = f"statemachine_engine_user_actions.{path.stem}_{abs(hash(path)):x}"
        if module_name in sys.modules:
            return sys.modules[module_name]
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise LookupError(f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception:
            del sys.modules[module_name]
            raise
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
                file=spec.pos.file, line=spec.pos.line, column=spec.pos.column,
            ) from None
