"""Tests for the position-keeping safe YAML reader."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest
import yaml

from statemachine_engine.config.model import Position
from statemachine_engine.config.yamlsource import (
    MAX_BYTES,
    YamlList,
    YamlMap,
    YamlStr,
    comment_groups,
    plain,
    read_yaml,
)
from statemachine_engine.errors import ConfigError


def error_of(text: str, source: str = "m.yaml") -> ConfigError:
    with pytest.raises(ConfigError) as info:
        read_yaml(text, source)
    return info.value


def test_yes_no_on_off_stay_strings_and_only_true_false_are_booleans() -> None:
    root = read_yaml("v: [on, off, yes, no, y, n, On, NO, true, False, TRUE]\n", "m.yaml")
    assert root["v"] == ["on", "off", "yes", "no", "y", "n", "On", "NO", True, False, True]


def test_numbers_null_and_strings_follow_the_core_schema() -> None:
    root = read_yaml(
        "v: [1, -2, 0x1F, 0o17, 007, 1.5, 1e3, .inf, -.inf, ~, null, '', 2024-01-01, 1:30, 1_000]\n"
        "e:\n",
        "m.yaml",
    )
    values = root["v"]
    assert values[:7] == [1, -2, 31, 15, 7, 1.5, 1000.0]
    assert values[7] == math.inf and values[8] == -math.inf
    assert values[9:] == [None, None, "", "2024-01-01", "1:30", "1_000"]
    assert root["e"] is None
    assert read_yaml("v: .nan\n", "m.yaml")["v"] != read_yaml("v: .nan\n", "m.yaml")["v"]


def test_explicit_core_tags_are_honoured() -> None:
    root = read_yaml("a: !!str 12\nb: !!int '7'\nc: !!float '2'\nd: !!bool 'true'\n", "m.yaml")
    assert root == {"a": "12", "b": 7, "c": 2.0, "d": True}
    assert error_of("a: !!int abc\n").line == 1


def test_values_remember_where_they_were_written() -> None:
    root = read_yaml("name: demo\nstates:\n  - idle\n  - busy\nn: 3\n", "m.yaml")
    assert isinstance(root, YamlMap)
    assert root.pos == Position("m.yaml", 1, 1)
    assert root.where_key("states") == Position("m.yaml", 2, 1)
    assert root.where("n") == Position("m.yaml", 5, 4)
    states = root["states"]
    assert isinstance(states, YamlList)
    assert states.where(1) == Position("m.yaml", 4, 5)
    assert isinstance(states[0], YamlStr) and states[0].pos == Position("m.yaml", 3, 5)
    assert root.where("missing") == root.pos


def test_plain_drops_positions() -> None:
    root = read_yaml("a: {b: [x, 1]}\n", "m.yaml")
    copy = plain(root)
    assert copy == {"a": {"b": ["x", 1]}}
    assert type(copy) is dict and type(copy["a"]["b"]) is list
    assert type(copy["a"]["b"][0]) is str


def test_duplicate_key_names_both_lines() -> None:
    error = error_of("name: a\nstates: []\nname: b\n")
    assert (error.file, error.line, error.column) == ("m.yaml", 3, 1)
    assert "line 3" in str(error) and "line 1" in str(error)
    assert str(error).startswith("m.yaml:3:1: duplicate key 'name'")


def test_duplicate_key_in_nested_mapping() -> None:
    error = error_of("a:\n  b: 1\n  c: 2\n  b: 3\n")
    assert (error.line, error.column) == (4, 3)


@pytest.mark.parametrize(
    "tag",
    [
        "!!python/object/apply:os.system",
        "!!python/object/new:os.system",
        "!!python/name:os.system",
    ],
)
def test_python_tags_are_rejected_and_nothing_runs(tmp_path: Path, tag: str) -> None:
    marker = tmp_path / "pwned"
    error = error_of(f"x: {tag} ['touch {marker}']\n")
    assert "unsupported YAML tag" in error.message
    assert (error.line, error.column) == (1, 4)
    assert not marker.exists()


@pytest.mark.parametrize(
    "text", ["a: !foo bar\n", "a: !!set {x}\n", "a: !!binary aGk=\n", "!x [1]\n"]
)
def test_non_standard_tags_are_rejected(text: str) -> None:
    assert "unsupported YAML tag" in error_of(text).message


def test_alias_bomb_fails_fast() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    previous = "a"
    for name in "bcdefghi":
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
        previous = name
    started = time.monotonic()
    error = error_of("\n".join(lines) + "\n")
    assert time.monotonic() - started < 30  # a real bomb would take minutes
    assert "alias" in error.message
    assert error.line is not None


def test_small_aliases_and_merge_keys_work() -> None:
    root = read_yaml("base: &b {x: 1, y: 2}\nuse:\n  <<: *b\n  y: 3\nlist: [*b]\n", "m.yaml")
    assert root["use"] == {"x": 1, "y": 3}
    assert root["list"] == [{"x": 1, "y": 2}]
    assert root["use"] is not root["base"]


def test_recursive_alias_is_an_error() -> None:
    assert "recursive" in error_of("a: &a [*a]\n").message


def test_tabs_give_position_and_hint() -> None:
    error = error_of("states:\n\t- a\n")
    assert (error.line, error.column) == (2, 1)
    assert error.hint is not None and "tab" in error.hint


def test_parser_errors_carry_position() -> None:
    error = error_of("a: [1, 2\nb: 3\n")
    assert error.line is not None and error.line >= 2
    assert error.message.startswith("invalid YAML")
    error = error_of("a: b: c\n")
    assert (error.line, error.column) == (1, 5)


def test_control_characters_are_reported_with_position() -> None:
    error = error_of("a: 1\nb: x\x00\n")
    assert (error.line, error.column) == (2, 5)


@pytest.mark.parametrize(
    ("text", "found"), [("- a\n- b\n", "a list"), ("just text\n", "a single value")]
)
def test_root_must_be_a_mapping(text: str, found: str) -> None:
    error = error_of(text)
    assert f"found {found}" in error.message
    assert (error.line, error.column) == (1, 1)


@pytest.mark.parametrize("text", ["", "   \n", "# only a comment\n"])
def test_empty_file_is_an_error(text: str) -> None:
    assert error_of(text).message == "file is empty"


def test_multiple_documents_are_an_error() -> None:
    assert error_of("a: 1\n---\nb: 2\n").line == 2


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    assert "deep" in error_of("a: " + "[" * 150 + "]" * 150 + "\n").message
    assert "deep" in error_of("a: " + "[" * 5000 + "\n").message


def test_oversized_text_is_rejected_before_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("parser must not run")

    monkeypatch.setattr(yaml, "compose", fail)
    error = error_of("a: " + "x" * MAX_BYTES + "\n")
    assert "MiB" in error.message
    error = error_of("a: " + "é" * (MAX_BYTES // 2) + "\n")
    assert "MiB" in error.message


def test_non_scalar_keys_are_rejected() -> None:
    assert "keys" in error_of("? [a, b]\n: 1\n").message


def test_comment_groups_follow_the_states_list() -> None:
    text = (
        "name: x\n"
        "states:\n"
        "  - booting\n"
        "  # === INITIALIZATION ===\n"
        "  - initializing\n"
        '  - "waiting"\n'
        "\n"
        "  #=== PROCESSING===\n"
        "  - processing  # inline comment\n"
        "  # === EMPTY ===\n"
        "  # === END ===\n"
        "  - done\n"
        "# === AFTER ===\n"
        "events: []\n"
    )
    root = read_yaml(text, "m.yaml")
    groups = comment_groups(text, root["states"], after_line=root.where_key("states").line)
    assert groups == {
        "INITIALIZATION": ("initializing", "waiting"),
        "PROCESSING": ("processing",),
        "END": ("done",),
    }


def test_comment_groups_ignore_comments_before_the_states_key() -> None:
    text = "# === HEADER ===\nstates:\n  - a\n  - b\n"
    root = read_yaml(text, "m.yaml")
    assert comment_groups(text, root["states"], after_line=2) == {}
    assert comment_groups(text, [], after_line=2) == {}
