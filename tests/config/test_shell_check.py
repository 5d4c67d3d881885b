"""Load-time refusal of `bash` placeholders where bash evaluates text as code, of placeholders
no escaping protects, and of commands that are not valid shell; each with file:line:col."""

from __future__ import annotations

from pathlib import Path

import pytest

from statemachine_engine.config import load_definition, parse_definition
from statemachine_engine.core.loader import ActionLoader
from statemachine_engine.errors import ConfigError
from statemachine_engine.tools.lint import CODES
from statemachine_engine.tools.validate import validate

HEAD = """\
name: m
initial_state: a
states: [a, b]
transitions:
  - {from: a, to: b, event: job_done}
actions:
  a:
    - type: bash
"""


def machine(command_yaml: str) -> str:
    return HEAD + command_yaml + "      success: job_done\n"


def error_of(command_yaml: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_definition(machine(command_yaml), "m.yaml", ActionLoader())
    return info.value


@pytest.mark.parametrize(
    ("command", "what"),
    [
        ('      command: "[[ {data.count} -gt 10 ]] && echo big"\n', "`[[ -gt ]]`"),
        ('      command: "echo $[ {data.v} + 1 ]"\n', "arithmetic"),
        ("      command: \"let 'n={data.v}'\"\n", "`let`"),
        ('      command: "declare -a arr; arr[{data.v}]=1"\n', "subscript"),
        ('      command: "read -r {data.v} <<< x"\n', "`read`"),
        ('      command: "printf -v {data.v} %s x"\n', "`printf`"),
        ('      command: "unset {data.v}"\n', "`unset`"),
        ('      command: "[[ -v {data.v} ]]"\n', "`[[ -v ]]`"),
        ('      command: "declare {data.v}=1"\n', "`declare`"),
    ],
)
def test_evaluating_positions_are_refused_at_load(command: str, what: str) -> None:
    error = error_of(command)
    assert (error.file, error.line, error.column) == ("m.yaml", 9, command.index("{data") + 1)
    assert error.code == "SM120"
    assert what in error.message
    assert error.hint is not None and ":int}" in error.hint and ":ident}" in error.hint


def test_block_scalar_position_is_the_placeholder_line() -> None:
    error = error_of("      command: |\n        echo start\n        (( n = {data.n} + 1 ))\n")
    assert (error.line, error.column) == (11, 16)
    assert str(error).startswith("m.yaml:11:16: placeholder {data.n} sits in an arithmetic")


@pytest.mark.parametrize(
    "command",
    [
        '      command: "[[ {data.count:int} -gt 10 ]] && echo big"\n',
        '      command: "read -r {data.v:ident} <<< x; echo {data.v|data.w}"\n',
        "      command: |\n        echo a \\\n        #{data.v}\n",
    ],
)
def test_declared_and_plain_placeholders_load(command: str) -> None:
    parse_definition(machine(command), "m.yaml", ActionLoader())


def test_invalid_shell_is_a_load_error_at_its_line() -> None:
    error = error_of("      command: |\n        echo start\n        if true; then echo x )\n")
    assert error.code == "SM121"
    assert (error.line, error.column) == (11, 9)
    assert "not valid shell" in error.message and "`)'" in error.message


def test_unescapable_position_is_a_load_error() -> None:
    error = error_of('      command: "echo ${NAME:-{data.name}}"\n')
    assert (error.code, error.line, error.column) == ("SM122", 9, 30)


def test_unknown_kind_is_a_load_error() -> None:
    error = error_of('      command: "echo {data.v:float}"\n')
    assert error.code == "SM123"
    assert "unknown kind 'float'" in error.message


def test_lint_reports_the_own_code(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(machine('      command: "let n={data.v}"\n'))
    findings = validate([path]).findings
    assert [f.code for f in findings] == ["SM120"]
    assert findings[0].line == 9 and CODES["SM120"][0] == "error"


def test_shipped_examples_still_load() -> None:
    root = Path(__file__).parents[2] / "examples"
    files = sorted(root.glob("*/*.yaml"))
    assert files
    for path in files:
        if path.name == "system.yaml":
            continue
        load_definition(path, ActionLoader([path.parent / "actions"]))
