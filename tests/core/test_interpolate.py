from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from statemachine_engine.core.interpolate import (
    MAX_ARG_BYTES,
    placeholders,
    render_shell,
    render_text,
    render_value,
    resolve,
)
from statemachine_engine.errors import ActionError, PlaceholderError

NOW = 1_700_000_000.0

CONTEXT: dict[str, Any] = {
    "machine_name": "worker",
    "current_state": "processing",
    "step_key": "worker:7",
    "current_job": {
        "id": "job-1",
        "job_id": "job-1",
        "job_type": "resize",
        "data": {"path": "/in/a.png", "sizes": [16, 32, {"w": 64}], "meta": None},
    },
    "event_data": {
        "name": "go",
        "event_type": "go",
        "payload": {"x": 1, "user": {"name": "ann"}},
        "source": "cli",
        "id": 42,
    },
    "result": "ok",
    "count": 3,
    "flag": True,
    "nothing": None,
    "items": ["a", "b"],
}


def bash(cmd: str) -> bytes:
    proc = subprocess.run(["bash", "-c", cmd], capture_output=True, timeout=10)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("job_id", "job-1"),
        ("id", "job-1"),
        ("job_type", "resize"),
        ("data", CONTEXT["current_job"]["data"]),
        ("data.path", "/in/a.png"),
        ("data.sizes.1", 32),
        ("data.sizes.2.w", 64),
        ("data.meta", None),
        ("payload", {"x": 1, "user": {"name": "ann"}}),
        ("payload.user.name", "ann"),
        ("event.name", "go"),
        ("event.source", "cli"),
        ("event.payload.x", 1),
        ("current_job.data.path", "/in/a.png"),
        ("current_job.job_type", "resize"),
        ("event_data.payload.x", 1),
        ("event_data.id", 42),
        ("machine_name", "worker"),
        ("current_state", "processing"),
        ("step_key", "worker:7"),
        ("result", "ok"),
        ("items.0", "a"),
        ("timestamp", "2023-11-14T22:13:20.000+00:00"),
    ],
)
def test_resolve_roots_and_paths(key: str, expected: Any) -> None:
    assert resolve(key, CONTEXT, now=NOW) == expected


def test_event_view_has_name_payload_source() -> None:
    assert resolve("event", CONTEXT) == {
        "name": "go",
        "payload": {"x": 1, "user": {"name": "ann"}},
        "source": "cli",
    }


def test_event_name_falls_back_to_event_type() -> None:
    assert resolve("event.name", {"event_data": {"event_type": "tick"}}) == "tick"


def test_job_roots_fall_back_to_context_without_job() -> None:
    assert resolve("id", {"id": "manual"}) == "manual"
    assert resolve("data.k", {"current_job": None, "data": {"k": 1}}) == 1


def test_timestamp_without_now_is_current() -> None:
    assert resolve("timestamp", {}).startswith("20")


@pytest.mark.parametrize(
    "key",
    [
        "missing",
        "missing.deep",
        "data.nope",
        "data.path.deeper",
        "data.sizes.9",
        "data.sizes.x",
        "data.meta.x",
        "nothing.x",
        "payload.user.age",
        "event.id",
        "timestamp.year",
    ],
)
def test_missing_key_raises_with_full_key(key: str) -> None:
    with pytest.raises(PlaceholderError) as info:
        render_text("a {" + key + "} b", CONTEXT)
    assert info.value.key == key
    assert "{" + key + "}" in str(info.value)


@pytest.mark.parametrize("key", ["job_id", "data", "payload", "event.name"])
def test_job_and_event_roots_missing_without_job_or_event(key: str) -> None:
    with pytest.raises(PlaceholderError):
        resolve(key, {"current_job": None, "event_data": None})


def test_placeholders_in_order() -> None:
    template = "a {id} {{lit}} ${HOME} {data.x.0} {{{result}}} }}"
    assert placeholders(template) == ["id", "data.x.0", "result"]


def test_render_text_braces_and_shell_vars() -> None:
    assert render_text("{{x}} ${HOME} $${x} {result}}}", CONTEXT) == "{x} ${HOME} $${x} ok}"
    assert render_text("{{{result}}}", CONTEXT) == "{ok}"
    assert render_text("awk '{ print $1 }' {result}", CONTEXT) == "awk '{ print $1 }' ok"


def test_render_text_value_forms() -> None:
    text = render_text("{count} {flag} {nothing}|{items} {payload}", CONTEXT)
    assert text == '3 true |["a","b"] {"x":1,"user":{"name":"ann"}}'
    assert render_text("{x}", {"x": 1.5}) == "1.5"
    assert render_text("{x}", {"x": {"k": "é"}}) == '{"k":"é"}'


def test_render_value_whole_string_keeps_type() -> None:
    params = {
        "payload": "{event_data.payload}",
        "n": "{count}",
        "flag": "{flag}",
        "none": "{nothing}",
        "list": ["{items}", "job {id}", 7],
        "nested": {"msg": "state={current_state}", "lit": "{{id}}"},
        "tuple": ("{id}",),
    }
    assert render_value(params, CONTEXT) == {
        "payload": {"x": 1, "user": {"name": "ann"}},
        "n": 3,
        "flag": True,
        "none": None,
        "list": [["a", "b"], "job job-1", 7],
        "nested": {"msg": "state=processing", "lit": "{id}"},
        "tuple": ("job-1",),
    }


def test_render_value_missing_key_raises() -> None:
    with pytest.raises(PlaceholderError):
        render_value({"a": ["{nope}"]}, CONTEXT)


def test_render_value_with_fixed_now() -> None:
    assert render_value("at {timestamp}", {}, now=NOW) == "at 2023-11-14T22:13:20.000+00:00"


META = "'\"$\\`;|&<>()*?~!{}[]# \n\t-"
UNICODE = "\u202e\u200f\u05d0\u0627é日🙂\u00a0\u2028"
any_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"))
shellish = st.text(st.sampled_from(META + UNICODE + "ab"), max_size=40)
TEMPLATES = [
    "printf %s {x}",
    "printf %s '{x}'",
    'printf %s "{x}"',
    "printf %s $'{x}'",
    "printf %s pre{x}post'{x}'\"{x}\"",
    'v="$(printf %s {x}; printf .)"; printf %s "${v%.}"',
    'printf %s "$(printf %s \'{x}\'; echo ")" >/dev/null)" >/dev/null; printf %s {x} # {x}',
]


@settings(max_examples=150, deadline=None)
@given(x=st.one_of(any_text, shellish))
@example(x="")
@example(x="'")
@example(x="a'b\"c$HOME`id`\\")
@example(x="\n#")
@example(x="-n")
def test_shell_rendering_prints_exactly_x(x: str) -> None:
    for template in TEMPLATES:
        cmd = render_shell(template, {"x": x})
        expected = f"pre{x}post{x}{x}" if "pre{x}" in template else x
        assert bash(cmd) == expected.encode(), (template, cmd)


PAYLOADS = [
    "$(touch {m})",
    "`touch {m}`",
    "'; touch {m}; '",
    '"; touch {m}; "',
    "\\'; touch {m} #",
    '\\"; touch {m} #',
    "\ntouch {m}\n",
    "x' $(touch {m}) '",
    "\\'$(touch {m})\\'",
    "${IFS}$(touch${IFS}{m})",
    ")\ntouch {m}\n(",
]
INJECT_TEMPLATES = [
    *TEMPLATES,
    "echo {x} >/dev/null",
    "true # {x}",
    "echo $(echo {x}) >/dev/null",
    "echo \"$(echo '{x}')\" >/dev/null",
    "cat <(printf %s {x}) >/dev/null",
    "(echo a)#'\n echo {x} >/dev/null",
    "echo $$'{x}' >/dev/null",
    "echo $((echo a); (echo b))#'{x}' >/dev/null",
    "echo \"$((echo ')'))\" {x} >/dev/null",
]


@pytest.mark.parametrize("template", INJECT_TEMPLATES)
@pytest.mark.parametrize("payload", PAYLOADS)
def test_injection_never_runs(tmp_path: Path, template: str, payload: str) -> None:
    marker = tmp_path / "pwned"
    x = payload.replace("{m}", str(marker))
    cmd = render_shell(template, {"x": x})
    assert subprocess.run(["bash", "-n", "-c", cmd], capture_output=True).returncode == 0
    subprocess.run(["bash", "-c", cmd], capture_output=True)
    assert not marker.exists()


@pytest.mark.parametrize(
    "template",
    [
        "echo `echo {x}`",
        'echo "`echo {x}`"',
        "echo ${UNSET:-{x}}",
        'echo "${UNSET:-{x}}"',
        "echo $(( {x} + 1 ))",
        "(( {x} > 1 ))",
        "cat <<EOF\n{x}\nEOF",
        "cat <<'EOF'\nEOF\necho {x}",
        "echo \\{x}",
        'echo "\\{x}"',
        "echo $(case a in a) echo {x};; esac)",
        "echo $((true) )#\\{x}",
    ],
)
def test_unescapable_positions_are_refused(template: str) -> None:
    with pytest.raises(ActionError, match=r"\{x\}"):
        render_shell(template, {"x": "v"})


def test_here_string_and_plain_constructs_are_allowed() -> None:
    assert bash(render_shell("cat <<< {x}", {"x": "a b"})) == b"a b\n"
    assert bash(render_shell("echo ${HOME:+set} {x}", {"x": "$(id)"})) == b"set $(id)\n"
    assert bash(render_shell("echo $((1 + 2)) {x}", {"x": ";"})) == b"3 ;\n"
    assert bash(render_shell("echo `echo a` {x}", {"x": "`b`"})) == b"a `b`\n"


def test_shell_value_forms() -> None:
    cmd = render_shell("printf %s {count} {flag} {nothing} '{payload}'", CONTEXT)
    assert bash(cmd) == b'3true{"x":1,"user":{"name":"ann"}}'


def test_shell_missing_key_raises() -> None:
    with pytest.raises(PlaceholderError):
        render_shell("echo {nope}", CONTEXT)


@pytest.mark.parametrize("template", ["echo {big}", "echo '{big}'", 'echo "{big}"'])
def test_nul_is_refused_naming_key(template: str) -> None:
    with pytest.raises(ActionError, match=r"\{big\}.*NUL"):
        render_shell(template, {"big": "a\x00b"})


def test_value_of_128_kib_is_refused_naming_key() -> None:
    with pytest.raises(ActionError, match=r"\{big\}.*file or stdin"):
        render_shell("printf %s {big}", {"big": "a" * MAX_ARG_BYTES})
    with pytest.raises(ActionError, match=r"\{big\}"):
        render_shell("printf %s {big}", {"big": "é" * (MAX_ARG_BYTES // 2)})


@pytest.mark.parametrize("template", TEMPLATES[:4])
def test_value_of_127_kib_passes_through_bash(template: str) -> None:
    value = "x" * (127 * 1024)
    assert bash(render_shell(template, {"x": value})) == value.encode()


def test_command_growing_past_limit_is_refused_naming_keys() -> None:
    with pytest.raises(ActionError, match=r"\{a\}, \{b\}.*file or stdin"):
        render_shell("printf %s {a} {b}", {"a": "x" * 70000, "b": "y" * 70000})


def test_surrogate_escaped_bytes_round_trip() -> None:
    raw = b"caf\xe9 \xff"
    x = os.fsdecode(raw)
    for template in TEMPLATES[:4]:
        assert bash(render_shell(template, {"x": x})) == raw
    assert bash(render_shell("printf %s {x}", {"x": raw})) == raw


def test_unencodable_surrogate_is_refused() -> None:
    with pytest.raises(ActionError, match=r"\{x\}.*encoded"):
        render_shell("echo {x}", {"x": "a\ud800"})
