"""Load-time check that every `{root.path}` placeholder in action parameters has a known root."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Sequence

from statemachine_engine.config.actionspecs import ParsedAction
from statemachine_engine.config.model import ActionCatalog
from statemachine_engine.config.placeholder_syntax import parse_key
from statemachine_engine.config.problems import Problems, close_matches
from statemachine_engine.config.yamlsource import yaml_strings

_PATH = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*"
PLACEHOLDER_RE = re.compile(
    rf"(?<![$\{{])\{{([A-Za-z_][A-Za-z0-9_]*)((?:\.[A-Za-z0-9_]+)*(?:\|{_PATH})*(?::[A-Za-z]+)?)\}}"
)
"""A placeholder; group 1 is its (first) root. `{a|b}` and `{a:int}` forms included."""

BUILTIN_ROOTS = frozenset(
    {
        "job_id",
        "id",
        "job_type",
        "data",
        "payload",
        "event",
        "event_data",
        "current_job",
        "machine_name",
        "current_state",
        "timestamp",
        "step_key",
        "last_error",
        "last_error_action",
        "result",
        "late_by",
    }
)

_KEY_PARAMS = ("store_as", "list_key")
_SET_CONTEXT_MAPS = ("values", "context")


def keys_set_by(action: ParsedAction) -> set[str]:
    """Context keys an action's own parameters say it sets (`store_as`, set_context keys...)."""
    params = action.spec.params
    keys = {str(params[name]) for name in _KEY_PARAMS if isinstance(params.get(name), str)}
    if action.spec.type == "set_context":
        if isinstance(params.get("key"), str):
            keys.add(str(params["key"]))
        for name in _SET_CONTEXT_MAPS:
            mapping = params.get(name)
            if isinstance(mapping, dict):
                keys.update(str(key) for key in mapping)
    return keys


def known_roots(
    actions: Sequence[ParsedAction], catalog: ActionCatalog, extra: Collection[str]
) -> set[str] | None:
    """Every placeholder root the actions may use, or None when some action type cannot say."""
    roots = set(BUILTIN_ROOTS) | set(extra)
    for action in actions:
        provided = catalog.provides(action.spec.type)
        if provided is None:
            return None
        roots |= provided
        roots |= keys_set_by(action)
    return roots


def _roots(text: str) -> Iterator[tuple[re.Match[str], str]]:
    """Each placeholder with each root it may read (`{a|b.c}` reads roots a and b)."""
    for match in PLACEHOLDER_RE.finditer(text):
        for root in parse_key(match.group(0)[1:-1]).roots:
            yield match, root


def check_placeholders(
    actions: Sequence[ParsedAction], roots: Collection[str], problems: Problems
) -> None:
    """Record an error for each placeholder whose root is not in `roots`."""
    for action in actions:
        for text in yaml_strings(action.raw_params):
            for match, root in _roots(text):
                if root in roots:
                    continue
                matches = close_matches(root, roots, n=3)
                if matches:
                    hint = "did you mean " + " or ".join(f"'{m}'" for m in matches) + "?"
                else:
                    hint = (
                        "set it with a `set_context` action, give it a default under `context:`,"
                        " or write {{ and }} for literal braces"
                    )
                problems.add(
                    text.pos, f"unknown placeholder root '{root}' in '{match.group(0)}'", hint
                )
