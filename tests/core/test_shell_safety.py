"""Job data never runs as code in a `bash` command, also where bash evaluates quoted text:
arithmetic, array subscripts, arguments naming variables, comments after backslash-newline.
Every check runs the rendered command with real bash and looks for a marker file."""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from statemachine_engine.config.placeholder_syntax import tokens
from statemachine_engine.core.interpolate import _escape, render_shell, render_text, render_value
from statemachine_engine.core.shellcode import analyze
from statemachine_engine.errors import ActionError, PlaceholderError

SUBSCRIPT_ATTACK = "a[$(touch {m})]"

REPRODUCTIONS = [
    "[[ {data.v} -eq 1 ]] && echo one",
    "echo $[ {data.v} + 1 ]",
    "let 'n={data.v}'",
    "declare -a arr; arr[{data.v}]=1",
    "read -r {data.v} <<< x",
    "printf -v {data.v} %s x",
    "unset {data.v}",
    "[[ -v {data.v} ]]",
    "declare {data.v}",
    "declare {data.v}=1",
    "test -v {data.v}",
    "n=0; declare -i n; n={data.v}",
    "declare -i n={data.v}",
    "declare -a a={data.v}",
    "echo $(( {data.v} ))",
    '(( "{data.v}" > 1 ))',
    "for (( i = 0; i < {data.v}; i++ )); do :; done",
    "[[ 1 -lt '{data.v}' ]]",
    "eval echo {data.v}",
    "n={data.v}; if (( n > 10 )); then echo big; fi",
    "v=$(echo {data.v}); [[ $v -gt 1 ]]",
    "read -r n <<< {data.v}; echo $(( n + 1 ))",
    "for i in {data.v}; do let 'j=i'; done",
    "echo $(( $(printf %s {data.v}) ))",
    '(( $(printf %s "{data.v}") ))',
    "declare -n r={data.v}; echo $r",
    'v={data.v}; echo "${!v}"',
    'n={data.v}; s=abc; echo "${s:n}"',
    'n={data.v}; a=(1); echo "${a[$n]}"',
    "n={data.v}; [[ -v $n ]]",
    "v={data.v}; n=$v; (( n ))",
    'cmd={data.v}; eval "$cmd"',
    'v={data.v}; read -r "$v" <<< x',
    "i={data.v}; arr[$i]=1",
    'p={data.v}; echo "${p@P}"',
    "PS4={data.v}; set -x; true",
]


def job(value: object) -> dict[str, object]:
    return {"current_job": {"id": "j1", "data": {"v": value}}}


def run(command: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["bash", "-c", command], capture_output=True, timeout=10, check=False)


@pytest.mark.parametrize("template", REPRODUCTIONS)
def test_undeclared_placeholder_where_bash_evaluates_is_refused(
    tmp_path: Path, template: str
) -> None:
    marker = tmp_path / "pwned"
    with pytest.raises(ActionError, match=r"\{data\.v\}.*declare it \{data\.v:int\}"):
        render_shell(template, job(SUBSCRIPT_ATTACK.format(m=marker)))
    assert not marker.exists()


ESCAPING_ALONE_STOPS = {
    "unset {data.v}",
    "declare {data.v}",
    "declare -a a={data.v}",
    '(( "{data.v}" > 1 ))',
}
"""Reproductions that this particular value does not break with escaping alone (others do:
`unset 'm[$(…)]'` on an associative array, `declare -a a='([0]=$(…))'`)."""


@pytest.mark.parametrize("template", sorted(set(REPRODUCTIONS) - ESCAPING_ALONE_STOPS))
def test_escaping_alone_would_run_the_value(tmp_path: Path, template: str) -> None:
    """The reproductions are real: escaped for its quoting only, the value runs in bash."""
    marker = tmp_path / "pwned"
    value = SUBSCRIPT_ATTACK.format(m=marker)
    slots = iter(analyze(template))
    command = "".join(
        _escape(next(slots).quoting.replace("arith", "bare"), value) if t.is_key else t.text
        for t in tokens(template)
    )
    run(command)
    assert marker.exists()


@pytest.mark.parametrize("template", REPRODUCTIONS)
@pytest.mark.parametrize("kind", ["int", "ident"])
def test_declared_placeholder_refuses_other_values(
    tmp_path: Path, template: str, kind: str
) -> None:
    marker = tmp_path / "pwned"
    declared = template.replace("{data.v}", f"{{data.v:{kind}}}")
    for attack in (SUBSCRIPT_ATTACK, "$(touch {m})", "1\ntouch {m}", "x y", "", "1 ", "09"):
        with pytest.raises(ActionError, match=rf"\{{data\.v:{kind}\}} must be"):
            render_shell(declared, job(attack.format(m=marker)))
    assert not marker.exists()


@pytest.mark.parametrize("template", ['echo ${arr["{v}"]}', "echo ${x:-\"$(echo '{v}')\"}"])
def test_quotes_inside_parameter_expansion_are_still_refused(template: str) -> None:
    assert analyze(template)[0].refused == "inside a ${...} expansion"


def test_declared_int_runs_with_a_number() -> None:
    context = job(12)
    assert run(render_shell("[[ {data.v:int} -gt 10 ]] && echo big", context)).stdout == b"big\n"
    assert run(render_shell("echo $[ {data.v:int} + 1 ]", context)).stdout == b"13\n"
    assert run(render_shell("let 'n={data.v:int}'; echo $n", job("-4"))).stdout == b"-4\n"
    command = render_shell("declare -a a; a[{data.v:int}]=x; echo ${!a[@]}", context)
    assert run(command).stdout == b"12\n"


def test_declared_ident_names_a_variable() -> None:
    command = render_shell("read -r {data.v:ident} <<< hi; echo $answer", job("answer"))
    assert run(command).stdout == b"hi\n"
    command = render_shell(
        "printf -v {data.v:ident} %s ok; [[ -v {data.v:ident} ]] && echo $n", job("n")
    )
    assert run(command).stdout == b"ok\n"


def test_comment_after_backslash_newline_keeps_the_value_inside(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    command = render_shell("echo a \\\n#{data.v}", job(f"\ntouch {marker} #"))
    proc = run(command)
    assert proc.returncode == 0
    assert proc.stdout == b"a\n"
    assert not marker.exists()


def test_backslash_newline_is_transparent() -> None:
    slots = analyze("echo a \\\n#{x}\nprintf %s \\\n{y} $\\\n(( {z} ))")
    assert [(s.key, s.quoting, bool(s.evaluates)) for s in slots] == [
        ("x", "comment", False),
        ("y", "bare", False),
        ("z", "arith", True),
    ]
    assert analyze("echo '\\\n{x}'")[0].quoting == "sq"


@pytest.mark.parametrize(
    "template",
    [
        "echo {x}",
        "x={x} y=2; echo $x",
        "declare x={x}",
        "local x={x} 2>/dev/null",
        "[[ {x} == a* ]]",
        "[[ -n {x} && {x} != b ]]",
        "[ {x} -eq 1 ]",
        "test {x} = 1",
        "printf %s {x}",
        "read -r v <<< {x}",
        "read -r v < {x}",
        "arr=({x} {x})",
        "echo a # read {x}",
        "let n=1; echo {x}",
        "case {x} in a) echo;; esac",
    ],
)
def test_plain_positions_stay_allowed(template: str) -> None:
    assert all(not slot.evaluates and not slot.refused for slot in analyze(template))


def test_fallback_takes_the_first_value_that_is_set() -> None:
    context = {"a": None, "b": "bee", "n": 3, "current_job": {"id": "j", "data": {"x": 1}}}
    assert render_text("{a|b}", context) == "bee"
    assert render_text("{missing|b}", context) == "bee"
    assert render_text("{data.x|b}", context) == "1"
    assert render_text("{a}", context) == ""
    assert render_value("{missing|n:int}", context) == 3
    with pytest.raises(PlaceholderError):
        render_text("{missing|other}", context)
    assert run(render_shell("echo {missing|b} $(( {nope|n:int} * 2 ))", context)).stdout == (
        b"bee 6\n"
    )


def test_declared_kinds_are_checked_outside_bash_too() -> None:
    assert render_text("n={n:int}", {"n": 5}) == "n=5"
    with pytest.raises(ActionError, match=r"\{n:int\} must be a plain integer"):
        render_text("n={n:int}", {"n": "5; rm"})
    with pytest.raises(ActionError, match=r"unknown kind 'float'"):
        render_text("{n:float}", {"n": 1})


# --- property: nothing but the intended command ever runs ---------------------------------

Expect = Callable[[str], str]


def _same(x: str) -> str:
    return x


def _int(f: Callable[[int], object]) -> Expect:
    return lambda x: str(f(int(x)))


# (template with {x}, kind it needs where bash evaluates or None, expected stdout for x)
CASES: list[tuple[str, str | None, Expect]] = [
    ("printf %s {x}", None, _same),
    ("printf %s '{x}'", None, _same),
    ('printf %s "{x}"', None, _same),
    ("printf %s $'{x}'", None, _same),
    ("printf %s a \\\n{x}", None, lambda x: "a" + x),
    ("printf %s a \\\n#{x}\nprintf %s b", None, lambda x: "ab"),
    ("printf %s a # {x} \\\nprintf %s b", None, lambda x: "ab"),
    ("true \\\n  # '{x}'\nprintf ok", None, lambda x: "ok"),
    ('v={x}; printf %s "$v"', None, _same),
    ('declare v={x}; printf %s "$v"', None, _same),
    ('arr=({x} "{x}"); printf %s "${arr[1]}"', None, _same),
    ('v="$(printf %s {x}; printf .)"; printf %s "${v%.}"', None, _same),
    ('[[ {x} == "$V" ]] || printf no', None, lambda x: "no" if x else ""),
    ("cat <<< {x}", None, lambda x: x + "\n"),
    ("[[ {x} -eq {x} ]] && printf ok", "int", lambda x: "ok"),
    ("printf %s $(( {x} + 1 ))", "int", _int(lambda n: n + 1)),
    ('printf %s "$(( {x} * 2 ))"', "int", _int(lambda n: n * 2)),
    ("printf %s $[ {x} - 1 ]", "int", _int(lambda n: n - 1)),
    ("(( n = {x} )); printf %s $n", "int", _same),
    ("let 'n={x}'; printf %s $n", "int", _same),
    ("declare -i n={x}; printf %s $n", "int", _same),
    ("n=0; declare -i n; n={x}; printf %s $n", "int", _same),
    ("v={x}; printf %s $(( v + 1 ))", "int", _int(lambda n: n + 1)),
    (
        "read -r v <<< {x}; [[ $v -lt 0 ]] && printf neg",
        "int",
        lambda x: "neg"[: 3 * (x[0] == "-")],
    ),
    ("printf %s $(( $(printf %s {x}) ))", "int", _same),
    ('v={x}; n=$v; printf %s "$(( n ))"', "int", _same),
    ('i={x}; a=(z); printf %s "${a[$i]-u}"', "int", lambda x: "z" if x in ("0", "-1") else "u"),
    ('v={x}; printf -v "$v" %s hi; printf ok', "ident", lambda x: "ok"),
    (
        'n={x}; s=abcdef; printf %s "${s:n:1}"',
        "int",
        lambda x: "abcdef"[int(x)] if -6 <= int(x) < 6 else "",
    ),
    ("declare -a a; a[{x}]=1; printf %s ${#a[@]}", "int", lambda x: "1" if int(x) >= 0 else ""),
    ("read -r {x} <<< hi; printf ok", "ident", lambda x: "ok"),
    ("printf -v {x} %s hi; printf ok", "ident", lambda x: "ok"),
    ("unset {x}; printf ok", "ident", lambda x: "ok"),
    ("[[ -v {x} ]]; printf ok", "ident", lambda x: "ok"),
    ("declare {x}=1 2>/dev/null; printf ok", "ident", lambda x: "ok"),
    ("cat <<EOF\n{x}\nEOF", "never", _same),
    ("echo `echo {x}`", "never", _same),
    ("echo ${UNSET:-{x}}", "never", _same),
]

ATTACKS = [
    "a[$(touch {m})]",
    "$(touch {m})",
    "`touch {m}`",
    "\ntouch {m} #",
    "x[`touch {m}`]",
    "1]+a[$(touch {m})",
    "'; touch {m}; '",
    '"; touch {m}; "',
    "$((`touch {m}`))",
    "a[\\$(touch {m})]",
    "-1",
    "0",
    "007",
    "IFS",
    "_x9",
]
META = "'\"$`\\;|&<>()[]{}#*?~! \n\t-=+ab019M"
values = st.one_of(
    st.sampled_from(ATTACKS),
    st.integers(-(10**9), 10**9).map(str),
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True),
    st.text(st.sampled_from(META), max_size=16),
    st.lists(st.sampled_from(ATTACKS), min_size=2, max_size=3).map("".join),
)
_INT = re.compile(r"0|-?[1-9][0-9]*")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _fits(kind: str, x: str) -> bool:
    if kind == "int":
        return _INT.fullmatch(x) is not None
    return _IDENT.fullmatch(x) is not None


@settings(max_examples=60, deadline=None, derandomize=True)
@given(raw=values)
@example(raw="a[$(touch {m})]")
@example(raw="\ntouch {m} #")
@example(raw="12")
@example(raw="answer")
def test_only_the_intended_command_runs(raw: str) -> None:
    """Each template, undeclared and declared, is refused or prints exactly what it should;
    all that render run in one bash process (each in a subshell) and no marker appears."""
    with tempfile.TemporaryDirectory() as tmp:
        marker = Path(tmp) / "M"
        x = raw.replace("{m}", str(marker))
        script: list[str] = []
        expected: list[str] = []
        for template, kind, expect in CASES:
            variants = [(template, kind is None)]
            if kind in ("int", "ident"):
                declared = template.replace("{x}", f"{{x:{kind}}}")
                variants.append((declared, _fits(kind, x)))
            for variant, renders in variants:
                try:
                    command = render_shell(variant, {"x": x})
                except ActionError:
                    assert not renders, (variant, x)
                    continue
                assert renders, (variant, x)
                script.append(f"(\n{command}\n) 2>/dev/null\nprintf '\\0'\n")
                expected.append(expect(x))
        proc = run("".join(script))
        assert proc.stdout.decode("utf-8", "surrogateescape").split("\0")[:-1] == expected
        assert not marker.exists()


WRAPPERS = [
    "{f}",
    "( {f}\n)",
    "{{ {f}\n}}",
    "if :; then {f}\nfi",
    "g() {{ {f}\n}}; g",
    ": \\\n; {f}",
]
SEPARATORS = ["\n", "; ", " \\\n; "]
COMPOSABLE = [case for case in CASES if case[1] in (None, "int") and "a[{x}]" not in case[0]]


@st.composite
def scripts(draw: st.DrawFn) -> tuple[str, list[Expect]]:
    """A template of 1-3 fragments, each wrapped in a group, subshell, if or function."""
    parts: list[str] = []
    expects: list[Expect] = []
    for _ in range(draw(st.integers(1, 3))):
        template, kind, expect = draw(st.sampled_from(COMPOSABLE))
        if kind == "int" and draw(st.booleans()):
            template = template.replace("{x}", "{x:int}")
        parts.append(draw(st.sampled_from(WRAPPERS)).format(f=template))
        expects.append(expect)
    return draw(st.sampled_from(SEPARATORS)).join(parts), expects


@settings(max_examples=40, deadline=None, derandomize=True)
@given(script=scripts(), raw=values)
def test_generated_templates_run_only_what_they_say(
    script: tuple[str, list[Expect]], raw: str
) -> None:
    """A generated template is refused at render, or runs and prints exactly the fragments'
    outputs, and no marker appears."""
    template, expects = script
    with tempfile.TemporaryDirectory() as tmp:
        marker = Path(tmp) / "M"
        x = raw.replace("{m}", str(marker))
        try:
            command = render_shell(template, {"x": x})
        except ActionError:
            slots = analyze(template)
            undeclared = any(s.evaluates and ":" not in s.key for s in slots)
            assert undeclared or not _fits("int", x), (template, x)
            return
        proc = run(command)
        assert proc.stdout.decode("utf-8", "surrogateescape") == "".join(e(x) for e in expects)
        assert not marker.exists()
