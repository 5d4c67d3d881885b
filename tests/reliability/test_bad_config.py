"""Malformed machine files and unsafe code: every bad file is refused at load time with one
line naming file:line:col (exit 2, no traceback, quickly, no Python object ever built);
action type names never import anything outside the action directories; the source has no
unsafe YAML loader, pickle, shell=True or formatted SQL. Catalogue items 26, 27 and 37."""

from __future__ import annotations

import ast
import os
import re
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statemachine_engine.cli.run import main as run_main
from statemachine_engine.config import load_definition
from statemachine_engine.core import ActionLoader
from statemachine_engine.errors import ConfigError

SRC = Path(__file__).resolve().parents[2] / "src" / "statemachine_engine"

VALID = """\
name: valid
initial_state: waiting
states: [waiting, working, on, yes]
events: [new_job, no_jobs, done, error]
options:
  jobs: {task: {lease: 10, heartbeat: 2, max_attempts: 5, backoff: 0.5, jitter: 0.2}}
transitions:
  - from: waiting
    to: working
    event: new_job
    actions:
      - type: check_database_queue
        params: {job_type: task}
  - {from: waiting, to: waiting, event: no_jobs}
  - from: working
    to: waiting
    event: done
    actions:
      - type: bash
        params: {command: "echo {job_id}", success: done}
  - {from: working, to: on, event: error}
  - {from: on, to: yes, event: done}
  - {from: yes, to: waiting, event: timeout(5)}
"""

LINE_COL = re.compile(r"\.yaml:\d+:\d+: ")
# CPU seconds per file; a coverage tracer (make test) roughly triples the interpreter's work.
BUDGET = 2.0 if sys.gettrace() is None else 4.0

# name -> (text, what the message must mention)
CORPUS: dict[str, tuple[str, str]] = {
    "tabs": ("name: x\ninitial_state: a\nstates:\n\t- a\n", "tab"),
    "duplicate_key": (VALID.replace("name: valid\n", "name: valid\nname: again\n"), "name"),
    "list_root": ("- a\n- b\n", "mapping"),
    "scalar_root": ("just text\n", "mapping"),
    "unknown_action": (VALID.replace("type: bash", "type: bsh"), "bash"),
    "undeclared_state": (VALID.replace("to: on, event", "to: off, event"), "off"),
    "bad_timeout": (VALID.replace("timeout(5)", "timeout(x)"), "timeout"),
    "no_initial": (VALID.replace("initial_state: waiting\n", ""), "initial_state"),
    "python_tag": (
        VALID.replace("name: valid", 'name: !!python/object/apply:os.system ["touch pwned"]'),
        "tag",
    ),
    "python_name": (VALID.replace("name: valid", "name: !!python/name:os.system ''"), "tag"),
    "alias_bomb": (
        "a: &a [x, x, x, x, x, x, x, x, x]\n"
        + "".join(
            f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n"
            for p, c in zip("abcdefgh", "bcdefghi", strict=True)
        )
        + "name: bomb\n",
        "alias",
    ),
    "unclosed": (VALID.replace("{job_type: task}", "{job_type: task"), "yaml"),
    "bad_indent": (VALID.replace("    to: working", "  to: working"), ""),
    "job_option_unknown": (VALID.replace("jitter: 0.2", "jiter: 0.2"), "jitter"),
    "job_option_negative": (VALID.replace("lease: 10", "lease: -1"), "lease"),
    "job_option_text": (VALID.replace("max_attempts: 5", "max_attempts: many"), "max_attempts"),
    "job_option_jitter": (VALID.replace("jitter: 0.2", "jitter: 1.5"), "jitter"),
    "heartbeat_too_long": (VALID.replace("heartbeat: 2", "heartbeat: 20"), "heartbeat"),
    "jobs_not_mapping": (
        VALID.replace("jobs: {task:", "jobs: [task,").replace("0.2}}", "0.2]"),
        "jobs",
    ),
    "action_path": (VALID.replace("type: bash", "type: ../evil"), "../evil"),
    "action_dotted": (VALID.replace("type: bash", "type: os.system"), "os.system"),
    "action_a_b": (VALID.replace("type: bash", "type: a.b"), "a.b"),
    "action_class": (VALID.replace("type: bash", "type: Evil"), "Evil"),
    "action_long": (VALID.replace("type: bash", "type: " + "x" * 200), "xxxx"),
    "binary": ("name: \x00\x01\x02\n", ""),
    "not_utf8": (None, ""),  # written as bytes below
}


def write_case(directory: Path, name: str, text: str | None) -> Path:
    path = directory / f"{name}.yaml"
    if text is None:
        path.write_bytes(b"name: caf\xe9\nstates: [a]\n")
    else:
        path.write_text(text)
    return path


def test_the_valid_file_loads(tmp_path: Path) -> None:
    definition = load_definition(write_case(tmp_path, "valid", VALID), ActionLoader())
    assert {"on", "yes"} <= set(definition.states)
    options = definition.job_options["task"]
    assert (options.lease, options.heartbeat, options.max_attempts) == (10, 2, 5)
    assert (options.backoff, options.jitter) == (0.5, 0.2)


@pytest.fixture
def import_audit() -> Iterator[list[str]]:
    """Module names imported while the fixture is active (sys.addaudithook cannot be
    removed, so the hook stays but records only while armed)."""
    seen: list[str] = []
    armed = [True]

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if armed[0] and event == "import":
            seen.append(str(args[0]))

    sys.addaudithook(hook)
    yield seen
    armed[0] = False


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", sorted(CORPUS))
def test_malformed_file_is_one_line_with_position_and_exit_2(
    case: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    import_audit: list[str],
) -> None:
    text, mention = CORPUS[case]
    path = write_case(tmp_path, case, text)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.process_time()  # CPU time: the work, not a busy host's scheduling
    code = run_main([str(path), "--machine-name", "x", "--db", f"sqlite:///{tmp_path}/x.db"])
    elapsed = time.process_time() - started
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert path.name in lines[0]
    if case not in ("binary", "not_utf8", "list_root", "scalar_root"):
        assert LINE_COL.search(lines[0]), lines[0]
    assert mention.lower() in lines[0].lower(), lines[0]
    assert elapsed < BUDGET, f"{case} took {elapsed:.2f} s"
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before < 100 * 1024
    assert not (tmp_path / "x.db").exists(), "nothing opened before the file was valid"
    assert not Path("pwned").exists()
    foreign = [m for m in import_audit if "evil" in m.lower() or m in ("os.system", "a.b")]
    assert foreign == [], "an action type name was imported"


@pytest.mark.timeout(60)
def test_two_mib_file_is_refused_quickly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text(VALID + "# " + "x" * (2 * 1024 * 1024) + "\n")
    started = time.process_time()
    assert run_main([str(path), "--machine-name", "x", "--db", f"sqlite:///{tmp_path}/x.db"]) == 2
    assert time.process_time() - started < BUDGET
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "huge.yaml" in err


@pytest.mark.timeout(60)
def test_a_few_cases_as_real_processes(tmp_path: Path, kit: Any) -> None:
    for case in ("tabs", "python_tag", "alias_bomb", "action_path", "job_option_negative"):
        path = write_case(tmp_path, case, CORPUS[case][0])
        started = time.monotonic()
        done = subprocess.run(
            [
                kit.STATEMACHINE,
                str(path),
                "--machine-name",
                "x",
                "--db",
                f"sqlite:///{tmp_path}/x.db",
            ],
            capture_output=True,
            text=True,
            timeout=20,
            cwd=tmp_path,
        )
        assert done.returncode == 2, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
        assert LINE_COL.search(done.stderr), done.stderr
        assert time.monotonic() - started < 5
    assert not (tmp_path / "pwned").exists()


def _mutations() -> st.SearchStrategy[str]:
    """Valid text with random edits: deletions, insertions of YAML punctuation, swaps."""
    pieces = st.sampled_from(
        [
            ":",
            "-",
            "[",
            "]",
            "{",
            "}",
            "&a",
            "*a",
            "!!",
            "\t",
            "\n",
            "  ",
            "'",
            '"',
            "#",
            "|",
            ">",
            "%",
            "@",
            "`",
            ",",
            "?",
            "~",
            "null",
            "yes",
            "on",
            "0x1",
            "1e400",
            "\x00",
            "\u202e",
        ]
    )
    edit = st.tuples(st.integers(0, len(VALID)), st.integers(0, 8), st.lists(pieces, max_size=3))

    @st.composite
    def build(draw: st.DrawFn) -> str:
        text = VALID
        for at, cut, insert in draw(st.lists(edit, min_size=1, max_size=4)):
            text = text[:at] + "".join(insert) + text[at + cut :]
        return text

    return build()


@pytest.mark.timeout(120)
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=_mutations())
def test_hypothesis_corpus_loads_or_fails_with_a_config_error(text: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.yaml"
        path.write_text(text, errors="surrogateescape")
        started = time.process_time()
        try:
            load_definition(path, ActionLoader())
        except ConfigError as exc:
            message = str(exc)
            assert "\n" not in message.strip() or message.count("\n") == 0
            assert message.startswith(str(path)) or "fuzz.yaml" in message, message
        assert time.process_time() - started < BUDGET


def _python_files() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "__pycache__" not in p.parts)


SQL_METHODS = {"execute", "executemany", "rows", "one"}


def _is_formatted(node: ast.expr) -> bool:
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.FormattedValue) for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add):
        return not (_is_constant(node.left) and _is_constant(node.right))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        # psycopg's sql.SQL("...").format(sql.Identifier(x)) quotes identifiers: allowed.
        receiver = node.func.value
        composed = isinstance(receiver, ast.Call) and (
            getattr(receiver.func, "attr", None) == "SQL"
            or getattr(receiver.func, "id", None) == "SQL"
        )
        return node.func.attr == "format" and not composed
    return False


def _is_constant(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _is_constant(node.left) and _is_constant(node.right)
    return isinstance(node, ast.Name) and node.id.isupper()  # module-level SQL constants


def test_no_unsafe_loaders_pickle_shell_or_formatted_sql() -> None:
    problems: list[str] = []
    for path in _python_files():
        tree = ast.parse(path.read_text(), str(path))
        rel = path.relative_to(SRC)
        for node in ast.walk(tree):
            where = f"{rel}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                if any(
                    n.split(".")[0] in ("pickle", "cPickle", "shelve", "marshal") for n in names
                ):
                    problems.append(f"{where}: imports pickle/shelve/marshal")
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("eval", "exec") and isinstance(func, ast.Name):
                problems.append(f"{where}: {name}()")
            if name in ("load", "load_all", "full_load", "unsafe_load", "unsafe_load_all"):
                owner = func.value if isinstance(func, ast.Attribute) else None
                if isinstance(owner, ast.Name) and owner.id == "yaml":
                    loader = {k.arg: k.value for k in node.keywords}.get("Loader")
                    if (
                        name.startswith(("unsafe", "full"))
                        or loader is None
                        or (isinstance(loader, ast.Attribute) and "Safe" not in loader.attr)
                    ):
                        problems.append(f"{where}: yaml.{name} without a safe loader")
            for kw in node.keywords:
                if (
                    kw.arg == "shell"
                    and not (isinstance(kw.value, ast.Constant) and kw.value.value is False)
                    and rel.as_posix() != "actions/builtin/bash.py"
                ):
                    problems.append(f"{where}: shell=True")
            sql_call = name in SQL_METHODS and isinstance(func, ast.Attribute) and node.args
            if sql_call and _is_formatted(node.args[0]):
                problems.append(f"{where}: formatted SQL passed to .{name}()")
    assert problems == []


def test_the_scanner_catches_what_it_should(tmp_path: Path) -> None:
    bad = ast.parse(
        "conn.execute(f'SELECT {x}')\nc.rows('SELECT %s' % x)\nc.one('a {}'.format(x))\n"
    )
    calls = [n for n in ast.walk(bad) if isinstance(n, ast.Call) and n.args]
    flagged = [c for c in calls if isinstance(c.func, ast.Attribute) and c.func.attr in SQL_METHODS]
    assert all(_is_formatted(c.args[0]) for c in flagged) and len(flagged) == 3
    ok = ast.parse("c.rows('SELECT 1' ' FROM t', (x,))\nc.rows(_CLAIM, args)\n")
    calls = [n for n in ast.walk(ok) if isinstance(n, ast.Call) and n.args]
    assert not any(_is_formatted(c.args[0]) for c in calls)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["fifo", "device", "directory"])
def test_a_machine_file_that_is_not_a_regular_file_is_refused_without_blocking(
    tmp_path: Path, kit: Any, kind: str
) -> None:
    # Opening a FIFO nobody writes blocks for ever; /dev/zero never ends.
    path = tmp_path / "worker.yaml"
    if kind == "fifo":
        os.mkfifo(path)
        what = "a FIFO (named pipe)"
    elif kind == "device":
        path.symlink_to("/dev/zero")
        what = "a character device"
    else:
        path.mkdir()
        what = "a directory"
    bin_dir = Path(kit.STATEMACHINE).parent
    commands = [
        [kit.STATEMACHINE, str(path), "--machine-name", "x", "--db", f"sqlite:///{tmp_path}/x.db"],
        [str(bin_dir / "statemachine-validate"), str(path)],
        [str(bin_dir / "statemachine-fsm"), str(path), "--stdout"],
        [kit.STATEMACHINE, "up", str(path)],
    ]
    for argv in commands:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=20, cwd=tmp_path)
        assert done.returncode == 2, (argv, done.stderr)
        [line] = done.stderr.strip().splitlines()
        assert line.endswith(
            f"{path}: {'a system' if 'up' in argv else 'a machine'} file must"
            f" be a regular file, but it is {what}"
        ), line
    assert not (tmp_path / "x.db").exists()
