"""Safe YAML reading that remembers where every mapping, list and string was written.

PyYAML only composes a node graph here; this module turns nodes into plain values itself, so
no tag can ever construct an object. Scalars follow the YAML 1.2 core schema with one twist
taken from python-statemachine: only `true`/`false` are booleans, so a state called `off`,
`on`, `yes` or `no` stays a string.
"""

from __future__ import annotations

import contextlib
import gc
import math
import re
from collections.abc import Iterator, Sequence
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from statemachine_engine.config.model import Position
from statemachine_engine.errors import ConfigError

MAX_BYTES = 2 * 1024 * 1024
MAX_ALIAS_NODES = 100_000
MAX_DEPTH = 100

_TAG = "tag:yaml.org,2002:"
STR_TAG = _TAG + "str"
INT_TAG = _TAG + "int"
FLOAT_TAG = _TAG + "float"
BOOL_TAG = _TAG + "bool"
NULL_TAG = _TAG + "null"
MERGE_TAG = _TAG + "merge"
MAP_TAG = _TAG + "map"
SEQ_TAG = _TAG + "seq"

_NULL_RE = re.compile(r"~|null|Null|NULL|")
_BOOL_RE = re.compile(r"true|false", re.IGNORECASE)
_INT_RE = re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")
_FLOAT_RE = re.compile(
    r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
)
_LINE_BREAK_RE = re.compile(r"\r\n|[\r\n\x85\u2028\u2029]")
_GROUP_RE = re.compile(r"\s*#\s*={3,}\s*(.*?)\s*={3,}\s*")


class YamlStr(str):
    """A string that knows where it was written."""

    pos: Position

    def __new__(cls, value: str, pos: Position) -> YamlStr:
        obj = super().__new__(cls, value)
        obj.pos = pos
        return obj

    def __getnewargs__(self) -> tuple[str, Position]:  # type: ignore[override]
        return (str(self), self.pos)


class YamlMap(dict[Any, Any]):
    """A mapping that knows where it starts and where each key and value was written."""

    def __init__(self, pos: Position) -> None:
        super().__init__()
        self.pos = pos
        self.key_pos: dict[Any, Position] = {}
        self.value_pos: dict[Any, Position] = {}

    def where_key(self, key: Any) -> Position:
        """Position of `key`, or of the mapping itself when the key is absent."""
        return self.key_pos.get(key, self.pos)

    def where(self, key: Any) -> Position:
        """Position of the value under `key`, or of the mapping itself when absent."""
        return self.value_pos.get(key, self.pos)


class YamlList(list[Any]):
    """A list that knows where it starts and where each item was written."""

    def __init__(self, pos: Position) -> None:
        super().__init__()
        self.pos = pos
        self.item_pos: list[Position] = []

    def where(self, index: int) -> Position:
        """Position of item `index`."""
        return self.item_pos[index]


def plain(value: Any) -> Any:
    """Copy `value` into builtin dicts, lists and strs, dropping position information."""
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value


def error_at(pos: Position, message: str, hint: str | None = None) -> ConfigError:
    """A ConfigError pointing at `pos`."""
    return ConfigError(message, file=pos.file, line=pos.line, column=pos.column, hint=hint)


class _TooDeepError(Exception):
    """Raised by the composer as soon as nesting passes MAX_DEPTH; carries the position."""

    def __init__(self, mark: Any) -> None:
        super().__init__("too deep")
        self.mark = mark


class _Loader(yaml.SafeLoader):
    """SafeLoader whose plain scalars resolve by the YAML 1.2 core schema, true/false only,
    and whose composer stops as soon as nesting passes MAX_DEPTH (PyYAML recurses once per
    level, so thousands of levels would otherwise cost seconds before failing)."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self.depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH + 1:
                raise _TooDeepError(self.peek_event().start_mark)  # type: ignore[no-untyped-call]
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is ScalarNode:
            return _resolve_plain(value) if implicit[0] else STR_TAG
        return SEQ_TAG if kind is SequenceNode else MAP_TAG


def _resolve_plain(value: str) -> str:
    if _NULL_RE.fullmatch(value):
        return NULL_TAG
    if _BOOL_RE.fullmatch(value):
        return BOOL_TAG
    if _INT_RE.fullmatch(value):
        return INT_TAG
    if _FLOAT_RE.fullmatch(value):
        return FLOAT_TAG
    if value == "<<":
        return MERGE_TAG
    return STR_TAG


def _show_tag(tag: str) -> str:
    return "!!" + tag[len(_TAG) :] if tag.startswith(_TAG) else tag


def _parse_int(text: str) -> int | None:
    if not _INT_RE.fullmatch(text):
        return None
    if text.startswith("0x"):
        return int(text[2:], 16)
    if text.startswith("0o"):
        return int(text[2:], 8)
    return int(text, 10)


def _parse_float(text: str) -> float | None:
    if not _FLOAT_RE.fullmatch(text) and not _INT_RE.fullmatch(text):
        return None
    lowered = text.lower()
    if lowered.endswith(".inf"):
        return -math.inf if lowered.startswith("-") else math.inf
    if lowered == ".nan":
        return math.nan
    if _INT_RE.fullmatch(text):
        parsed = _parse_int(text)
        return float(parsed) if parsed is not None else None
    return float(text)


class _Converter:
    """Turns a composed node graph into Yaml* values, guarding against alias bombs and cycles."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.seen: set[int] = set()
        self.active: set[int] = set()
        self.alias_depth = 0
        self.expanded = 0

    def pos(self, node: Node) -> Position:
        return Position(self.source, node.start_mark.line + 1, node.start_mark.column + 1)

    def convert(self, node: Node, depth: int = 0) -> Any:
        key = id(node)
        if key in self.active:
            raise error_at(
                self.pos(node), "recursive YAML alias", "an anchor cannot contain itself"
            )
        if depth > MAX_DEPTH:
            raise error_at(self.pos(node), f"YAML nesting deeper than {MAX_DEPTH} levels")
        is_alias = key in self.seen
        self.seen.add(key)
        if is_alias:
            self.alias_depth += 1
        if self.alias_depth:
            self.expanded += 1
            if self.expanded > MAX_ALIAS_NODES:
                raise error_at(
                    self.pos(node),
                    f"YAML aliases expand to more than {MAX_ALIAS_NODES} nodes",
                    "this looks like an alias bomb; write the values out instead",
                )
        self.active.add(key)
        try:
            if isinstance(node, MappingNode):
                return self.mapping(node, depth)
            if isinstance(node, SequenceNode):
                return self.sequence(node, depth)
            return self.scalar(node)
        finally:
            self.active.discard(key)
            if is_alias:
                self.alias_depth -= 1

    def tag_error(self, node: Node) -> ConfigError:
        return error_at(
            self.pos(node),
            f"unsupported YAML tag '{_show_tag(node.tag)}'",
            "only plain strings, numbers, true/false, null, lists and mappings are allowed",
        )

    def scalar(self, node: Node) -> Any:
        value: str = node.value
        tag: str = node.tag
        if tag == STR_TAG:
            return YamlStr(value, self.pos(node))
        if tag == NULL_TAG:
            return None
        if tag == BOOL_TAG and _BOOL_RE.fullmatch(value):
            return value.lower() == "true"
        if tag == INT_TAG and (number := _parse_int(value)) is not None:
            return number
        if tag == FLOAT_TAG and (real := _parse_float(value)) is not None:
            return real
        if tag == MERGE_TAG:
            raise error_at(self.pos(node), "'<<' merge key is only allowed as a mapping key")
        if tag in (BOOL_TAG, INT_TAG, FLOAT_TAG):
            raise error_at(self.pos(node), f"{value!r} is not a valid {_show_tag(tag)} value")
        raise self.tag_error(node)

    def sequence(self, node: SequenceNode, depth: int) -> YamlList:
        if node.tag != SEQ_TAG:
            raise self.tag_error(node)
        result = YamlList(self.pos(node))
        for item in node.value:
            result.append(self.convert(item, depth + 1))
            result.item_pos.append(self.pos(item))
        return result

    def mapping(self, node: MappingNode, depth: int) -> YamlMap:
        if node.tag != MAP_TAG:
            raise self.tag_error(node)
        result = YamlMap(self.pos(node))
        merged: list[YamlMap] = []
        for key_node, value_node in node.value:
            if key_node.tag == MERGE_TAG and isinstance(key_node, ScalarNode):
                merged.extend(self.merge_sources(value_node, depth))
                continue
            if not isinstance(key_node, ScalarNode):
                raise error_at(self.pos(key_node), "mapping keys must be plain values")
            key = plain(self.scalar(key_node))
            key_pos = self.pos(key_node)
            if key in result.key_pos:
                first = result.key_pos[key]
                raise error_at(
                    key_pos,
                    f"duplicate key {key!r} on line {key_pos.line},"
                    f" first defined on line {first.line}",
                    "each key may appear only once in a mapping",
                )
            result[key] = self.convert(value_node, depth + 1)
            result.key_pos[key] = key_pos
            result.value_pos[key] = self.pos(value_node)
        for source in merged:
            for key, value in source.items():
                if key not in result.key_pos:
                    result[key] = value
                    result.key_pos[key] = source.key_pos[key]
                    result.value_pos[key] = source.value_pos[key]
        return result

    def merge_sources(self, node: Node, depth: int) -> list[YamlMap]:
        value = self.convert(node, depth + 1)
        sources = value if isinstance(value, YamlList) else [value]
        if not all(isinstance(item, YamlMap) for item in sources):
            raise error_at(self.pos(node), "'<<' must be followed by a mapping or list of mappings")
        return list(sources)


def _line_column(text: str, index: int) -> tuple[int, int]:
    before = _LINE_BREAK_RE.split(text[:index])
    return len(before), len(before[-1]) + 1


def _yaml_error(exc: yaml.YAMLError, text: str, source: str) -> ConfigError:
    """Turn a PyYAML scanner/parser/reader error into a ConfigError with its position."""
    if isinstance(exc, yaml.reader.ReaderError):
        line, column = _line_column(text, exc.position)
        char = exc.character if isinstance(exc.character, str) else chr(exc.character)
        return ConfigError(
            f"invalid YAML: unacceptable character #x{ord(char):04x}",
            file=source,
            line=line,
            column=column,
            hint="remove control characters from the file",
        )
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "malformed YAML"
        hint = None
        if exc.context and exc.context_mark is not None:
            hint = f"{exc.context} on line {exc.context_mark.line + 1}"
        if mark is not None:
            lines = _LINE_BREAK_RE.split(text)
            if mark.line < len(lines) and "\t" in lines[mark.line]:
                hint = "YAML does not allow tabs for indentation; indent with spaces"
            return ConfigError(
                f"invalid YAML: {problem}",
                file=source,
                line=mark.line + 1,
                column=mark.column + 1,
                hint=hint,
            )
        return ConfigError(f"invalid YAML: {problem}", file=source, hint=hint)
    return ConfigError(f"invalid YAML: {exc}", file=source)


def check_size(size: int, source: str) -> None:
    """Reject sources above MAX_BYTES before any parsing happens."""
    if size > MAX_BYTES:
        raise ConfigError(
            f"file is {size} bytes, larger than the {MAX_BYTES // (1024 * 1024)} MiB limit",
            file=source,
            hint="machine definitions are small; split the file or move data out of it",
        )


def read_yaml(text: str, source: str) -> YamlMap:
    """Parse `text` as one YAML document whose root is a mapping; errors name `source`."""
    if len(text) > MAX_BYTES:
        check_size(len(text), source)
    check_size(len(text.encode("utf-8", "surrogatepass")), source)
    with _no_gc():
        return _read_yaml(text, source)


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while a document is built: the nodes and values
    are all alive until the end, and collections triggered by their allocation alone made
    a 10,000-transition file take twice as long."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _read_yaml(text: str, source: str) -> YamlMap:
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, text, source) from None
    except _TooDeepError as exc:
        raise ConfigError(
            f"YAML nesting deeper than {MAX_DEPTH} levels",
            file=source,
            line=exc.mark.line + 1,
            column=exc.mark.column + 1,
            hint="flatten the structure",
        ) from None
    except RecursionError:
        raise ConfigError(
            "YAML nesting is too deep", file=source, hint=f"keep it under {MAX_DEPTH} levels"
        ) from None
    if node is None:
        raise ConfigError(
            "file is empty",
            file=source,
            line=1,
            column=1,
            hint="a machine definition needs at least initial_state, states and transitions",
        )
    root = _Converter(source).convert(node)
    if not isinstance(root, YamlMap):
        kind = "a list" if isinstance(root, YamlList) else "a single value"
        raise error_at(
            Position(source, node.start_mark.line + 1, node.start_mark.column + 1),
            f"the top level must be a mapping, found {kind}",
            "start with keys like `initial_state:`, `states:` and `transitions:`",
        )
    return root


def comment_groups(
    text: str, states: Sequence[YamlStr], *, after_line: int = 0
) -> dict[str, tuple[str, ...]]:
    """State groups written as `# === NAME ===` comments between the items of a states list.

    Each state belongs to the nearest group comment above it that lies after `after_line`
    (the line of the `states:` key); states above the first such comment belong to no group.
    """
    if not states:
        return {}
    last_line = max(state.pos.line for state in states)
    headers: list[tuple[int, str]] = []
    for number, line in enumerate(_LINE_BREAK_RE.split(text), start=1):
        if number <= after_line:
            continue
        if number > last_line:
            break
        match = _GROUP_RE.fullmatch(line)
        if match and match.group(1):
            headers.append((number, match.group(1)))
    groups: dict[str, list[str]] = {}
    for state in states:
        owner = None
        for number, name in headers:
            if number < state.pos.line:
                owner = name
        if owner is not None:
            members = groups.setdefault(owner, [])
            if str(state) not in members:
                members.append(str(state))
    return {name: tuple(members) for name, members in groups.items()}


def yaml_strings(value: Any) -> Iterator[YamlStr]:
    """Every string in a parsed YAML value (mappings' values, lists' items), with positions."""
    if isinstance(value, YamlStr):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from yaml_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from yaml_strings(item)
