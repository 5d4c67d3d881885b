"""The system file `statemachine up` reads: which machines to run, how many, with what.

```yaml
db: sqlite:///data/pipeline.db
ui: false
machines:
  - {config: generator.yaml, name: generator, instances: 1, env: {KEY: value}}
```
Every relative path in the file is relative to the file: `config:`, `actions_dir:`,
`workdir:` and the path of a `sqlite:///` `db:` URL. Errors are ConfigErrors with file:line:col.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from statemachine_engine.config.model import Position
from statemachine_engine.config.problems import did_you_mean
from statemachine_engine.config.yamlsource import YamlList, YamlMap, plain, read_yaml
from statemachine_engine.database.schedules import ScheduleSpec
from statemachine_engine.errors import ConfigError, StateMachineError
from statemachine_engine.tools.system_schedules import system_schedules
from statemachine_engine.transport.runtime_dir import validate_machine_name

SYSTEM_KEYS = (
    "name", "description", "db", "ui", "workdir", "restart", "stop_timeout", "machines",
    "schedules",
)  # fmt: skip
MACHINE_KEYS = ("config", "name", "instances", "env", "initial_context", "actions_dir", "args")
RESTART_KEYS = ("max_restarts", "window", "backoff", "max_backoff")


@dataclass(frozen=True)
class RestartPolicy:
    """Restart a crashed machine after `backoff` s, doubling up to `max_backoff`; give up
    after `max_restarts` crashes within `window` seconds."""

    max_restarts: int = 5
    window: float = 60.0
    backoff: float = 0.5
    max_backoff: float = 30.0


@dataclass(frozen=True)
class MachineEntry:
    """One machine line of the system file; `instances` > 1 run as `<name>-1..N`."""

    config: Path
    name: str
    instances: int = 1
    env: dict[str, str] = field(default_factory=dict)
    initial_context: dict[str, Any] | None = None
    actions_dirs: tuple[Path, ...] = ()
    args: tuple[str, ...] = ()
    pos: Position | None = None

    @property
    def instance_names(self) -> tuple[str, ...]:
        if self.instances == 1:
            return (self.name,)
        return tuple(f"{self.name}-{i}" for i in range(1, self.instances + 1))


@dataclass(frozen=True)
class SystemSpec:
    """A parsed system file."""

    source: Path
    machines: tuple[MachineEntry, ...]
    db: str | None = None
    ui: bool = False
    workdir: Path | None = None
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    stop_timeout: float = 10.0
    name: str | None = None
    #: `schedules:` (docs/schedules.md), put into the database by `statemachine up`.
    schedules: tuple[ScheduleSpec, ...] = ()


def is_system_file(path: str | os.PathLike[str]) -> bool:
    """True when the YAML file at `path` looks like a system file (top-level `machines:`)."""
    try:
        text = Path(path).read_text("utf-8")
        if "machines" not in text:
            return False  # spares parsing a big machine file twice
        root = read_yaml(text, os.fspath(path))
    except (OSError, UnicodeDecodeError, StateMachineError):
        return False
    return "machines" in root and "states" not in root and "transitions" not in root


def _error(pos: Position, message: str, hint: str | None = None) -> ConfigError:
    return ConfigError(message, file=pos.file, line=pos.line, column=pos.column, hint=hint)


def _check_keys(mapping: YamlMap, allowed: tuple[str, ...], what: str) -> None:
    for key in mapping:
        if key not in allowed:
            raise _error(
                mapping.where_key(key),
                f"unknown {what} key {str(key)!r}",
                did_you_mean(str(key), allowed) or "allowed: " + ", ".join(allowed),
            )


def _number(mapping: YamlMap, key: str, default: float, *, integer: bool = False) -> Any:
    value = mapping.get(key, default)
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or value < 0:
        kind = "a whole number" if integer else "a number"
        raise _error(mapping.where(key), f"`{key}:` must be {kind} >= 0, found {value!r}")
    return value


def _string(mapping: YamlMap, key: str) -> str | None:
    value = mapping.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise _error(mapping.where(key), f"`{key}:` must be a non-empty string")
    return str(value)


def _db_url(root: YamlMap, base: Path) -> str | None:
    """The `db:` URL with a relative SQLite path made absolute against the file's folder,
    so the machines, the UI and `up` itself open one database wherever `up` is run."""
    url = _string(root, "db")
    if url is None or url.startswith(("sqlite:////", "sqlite:///:memory:")):
        return url
    if url.startswith("sqlite:///"):
        return "sqlite:///" + os.path.abspath(base / url.removeprefix("sqlite:///"))
    if "://" not in url and not url.startswith("sqlite:") and not os.path.isabs(url):
        return os.path.abspath(base / url)
    return url


def load_system(path: str | os.PathLike[str]) -> SystemSpec:
    """Read and check the system file at `path`."""
    source = os.fspath(path)
    try:
        text = Path(source).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {source}: {exc}", file=source) from None
    root = read_yaml(text, source)
    _check_keys(root, SYSTEM_KEYS, "system")
    base = Path(source).parent
    machines_value = root.get("machines")
    if not isinstance(machines_value, YamlList) or not machines_value:
        raise _error(
            root.where("machines") if "machines" in root else root.pos,
            "`machines:` must be a non-empty list",
            "write `machines: [{config: worker.yaml}]`",
        )
    machines = [
        _machine(item, machines_value.where(i), base) for i, item in enumerate(machines_value)
    ]
    seen: dict[str, MachineEntry] = {}
    for entry in machines:
        for name in entry.instance_names:
            if name in seen:
                raise _error(
                    entry.pos or root.pos,
                    f"machine name '{name}' is used twice",
                    "give each entry its own `name:`",
                )
            seen[name] = entry
    ui = root.get("ui", False)
    if not isinstance(ui, bool):
        raise _error(root.where("ui"), "`ui:` must be true or false")
    restart = RestartPolicy()
    restart_value = root.get("restart")
    if restart_value is not None:
        if not isinstance(restart_value, YamlMap):
            raise _error(root.where("restart"), "`restart:` must be a mapping")
        _check_keys(restart_value, RESTART_KEYS, "restart")
        restart = RestartPolicy(
            max_restarts=_number(restart_value, "max_restarts", 5, integer=True),
            window=float(_number(restart_value, "window", 60.0)),
            backoff=float(_number(restart_value, "backoff", 0.5)),
            max_backoff=float(_number(restart_value, "max_backoff", 30.0)),
        )
    workdir = _string(root, "workdir")
    return SystemSpec(
        source=Path(source),
        machines=tuple(machines),
        db=_db_url(root, base),
        ui=ui,
        workdir=None if workdir is None else base / workdir,
        restart=restart,
        stop_timeout=float(_number(root, "stop_timeout", 10.0)),
        name=_string(root, "name"),
        schedules=system_schedules(root),
    )


def _machine(item: Any, where: Position, base: Path) -> MachineEntry:
    if not isinstance(item, YamlMap):
        raise _error(where, "a machine entry must be a mapping", "write `- config: worker.yaml`")
    _check_keys(item, MACHINE_KEYS, "machine")
    config = _string(item, "config")
    if config is None:
        raise _error(item.pos, "machine entry has no `config:`", "add `config: worker.yaml`")
    config_path = base / config
    if not config_path.is_file():
        raise _error(item.where("config"), f"machine config '{config}' not found")
    name = _string(item, "name") or _default_name(config_path)
    try:
        validate_machine_name(name)
    except StateMachineError as exc:
        raise _error(item.where("name") if "name" in item else item.pos, str(exc)) from None
    instances = _number(item, "instances", 1, integer=True)
    if instances < 1:
        raise _error(item.where("instances"), "`instances:` must be at least 1")
    env_value = item.get("env")
    env_value = YamlMap(item.pos) if env_value is None else env_value
    if not isinstance(env_value, YamlMap) or not all(
        isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in env_value.values()
    ):
        raise _error(item.where("env"), "`env:` must map variable names to strings")
    initial = item.get("initial_context")
    if initial is not None and not isinstance(initial, YamlMap):
        raise _error(item.where("initial_context"), "`initial_context:` must be a mapping")
    dirs = item.get("actions_dir", [])
    if isinstance(dirs, str):
        dirs = [dirs]
    if not isinstance(dirs, list) or not all(isinstance(d, str) for d in dirs):
        raise _error(item.where("actions_dir"), "`actions_dir:` must be a path or a list")
    args = item.get("args", [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise _error(item.where("args"), "`args:` must be a list of strings")
    return MachineEntry(
        config=config_path,
        name=name,
        instances=instances,
        env={str(k): str(v) for k, v in env_value.items()},
        initial_context=None if initial is None else plain(initial),
        actions_dirs=tuple(base / d for d in dirs),
        args=tuple(str(a) for a in args),
        pos=item.pos,
    )


def _default_name(config: Path) -> str:
    """metadata.machine_name of the config (read without validating it), else its stem."""
    try:
        root = read_yaml(config.read_text("utf-8"), str(config))
    except (OSError, UnicodeDecodeError, StateMachineError):
        return config.stem
    metadata = root.get("metadata")
    name = metadata.get("machine_name") if isinstance(metadata, YamlMap) else None
    name = name or root.get("machine_name")
    return str(name) if isinstance(name, str) and name else config.stem
