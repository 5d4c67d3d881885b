"""Validate a set of machine files (and system files): load each one, collect every
load-time error, then lint what loaded as one set."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from statemachine_engine.actions.builtin.machines import passed_keys, started_config
from statemachine_engine.config.loader import collect_errors
from statemachine_engine.config.model import MachineDefinition
from statemachine_engine.core.loader import ActionLoader, default_actions_dirs
from statemachine_engine.errors import ConfigError
from statemachine_engine.tools.lint import ERROR, INFO, Finding, Machine, from_config_error, lint
from statemachine_engine.tools.system import is_system_file, load_system


@dataclass(frozen=True)
class Report:
    """Findings for the validated files and how many files there were."""

    findings: tuple[Finding, ...]
    files: int

    def only(self, *, select: Sequence[str] | None = None, ignore: Sequence[str] = ()) -> Report:
        """The report with only the `select`ed codes (all when None), minus `ignore`d ones."""
        kept = tuple(
            f
            for f in self.findings
            if (select is None or f.code in select) and f.code not in ignore
        )
        return Report(kept, self.files)

    def count(self, severity: str) -> int:
        return sum(1 for f in self.findings if f.severity == severity)

    def exit_code(self, *, strict: bool = False) -> int:
        """2 when a definition does not load, 1 for lint findings (info ones only when
        strict), else 0."""
        if self.count(ERROR):
            return 2
        failing = [f for f in self.findings if strict or f.severity != INFO]
        return 1 if failing else 0

    def summary(self) -> str:
        if not self.findings:
            return f"{self.files} file(s) checked, no findings"
        parts = [f"{self.count(s)} {s}(s)" for s in (ERROR, "warning", INFO) if self.count(s)]
        return f"{self.files} file(s) checked: " + ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "findings": [f.to_dict() for f in self.findings],
            "errors": self.count(ERROR),
            "warnings": self.count("warning"),
            "infos": self.count(INFO),
        }


def _default_actions_dirs(given: Sequence[str | Path], config: Path) -> list[Path]:
    return default_actions_dirs([str(d) for d in given], config)


def _load(
    config: Path, dirs: Sequence[Path], keys: frozenset[str]
) -> tuple[ActionLoader, MachineDefinition | None, list[ConfigError]]:
    loader = ActionLoader(dirs)
    definition, errors = collect_errors(config, loader, extra_context_keys=keys)
    return loader, definition, errors


def _spawned_keys(
    loaded: Sequence[tuple[Path, MachineDefinition | None]],
) -> dict[Path, frozenset[str]]:
    """Context keys each validated file receives from a `start_fsm` of another validated
    file (`context_vars`, `initial_context`): a spawned template's placeholders that come
    from its spawner are then known, as they are when it runs."""
    found: dict[Path, frozenset[str]] = {}
    for spawner, definition in loaded:
        if definition is None:
            continue
        for specs in definition.entry_actions.values():
            for spec in specs:
                target = spec.params.get("yaml_path", spec.params.get("config"))
                if spec.type != "start_fsm" or not isinstance(target, str) or "{" in target:
                    continue
                path = started_config(target, spawner).resolve()
                found[path] = found.get(path, frozenset()) | passed_keys(spec.params)
    return found


def validate(paths: Sequence[Path], *, actions_dirs: Sequence[str | Path] = ()) -> Report:
    """Check `paths` together: several configs (or a system file) form one complete set."""
    findings: list[Finding] = []
    machines: list[Machine] = []
    system = len(paths) > 1
    jobs: list[tuple[Path, tuple[str, ...], list[Path], frozenset[str]]] = []
    for path in paths:
        if is_system_file(path):
            system = True
            try:
                spec = load_system(path)
            except ConfigError as exc:
                findings.append(from_config_error(exc, str(path)))
                continue
            for entry in spec.machines:
                dirs = list(entry.actions_dirs) or _default_actions_dirs(actions_dirs, entry.config)
                keys = frozenset(entry.initial_context or {})
                jobs.append((entry.config, entry.instance_names, dirs, keys))
        else:
            jobs.append((path, (), _default_actions_dirs(actions_dirs, path), frozenset()))
    loaded = [(job, _load(job[0], job[2], job[3])) for job in jobs]
    spawned = _spawned_keys([(job[0], result[1]) for job, result in loaded])
    seen: dict[Path, int] = {}
    for (config, names, dirs, keys), (loader, definition, errors) in loaded:
        passed = spawned.get(config.resolve(), frozenset())
        if not passed <= keys:
            keys |= passed
            loader, definition, errors = _load(config, dirs, keys)
        findings.extend(from_config_error(e, str(config)) for e in errors)
        if definition is None:
            continue
        index = seen.get(config.resolve())
        if index is not None:
            known = machines[index]
            machines[index] = Machine(
                known.definition, known.catalog, known.names + names, known.extra_context_keys
            )
            continue
        seen[config.resolve()] = len(machines)
        machines.append(Machine(definition, loader, names, keys))
    findings.extend(lint(machines, system=system))
    unique = sorted(set(findings), key=Finding.sort_key)
    files = {p.resolve() for p in paths} | {p.resolve() for p, *_ in jobs}
    return Report(tuple(unique), len(files))


if __name__ == "__main__":
    # `python -m statemachine_engine.tools.validate CONFIG…`, as in the released package.
    import sys

    from statemachine_engine.cli.validate import main

    sys.exit(main())
