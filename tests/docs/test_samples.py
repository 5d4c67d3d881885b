"""Every code sample in the docs and the README is checked, so the docs cannot lie.

Conventions for authors (see docs/contributing-docs.md):

- ``yaml`` blocks must be valid YAML. A block with ``initial_state:`` is a whole machine
  definition and must load with ``parse_definition``; put ``<!-- fragment -->`` on the line
  before the fence for an excerpt that is not meant to load on its own.
- ``python`` blocks are executed in a scratch directory holding the quickstart's
  ``worker.yaml`` and an empty ``actions/``; ``<!-- compile-only -->`` before the fence
  only compiles a block that needs a system that is not there.
- ``json`` and ``toml`` blocks must parse.
- Every ``statemachine*`` command line in ``bash``, ``sh`` and ``console`` blocks (after
  ``$ `` in console blocks) must be accepted by that program's argument parser.
- The quickstart sequence (README and docs/quickstart.md) is run for real.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from statemachine_engine.cli import db, fsm, init, run, test, ui, up, validate
from statemachine_engine.cli.common import CliParser
from statemachine_engine.config import parse_definition
from statemachine_engine.core import ActionLoader

ROOT = Path(__file__).resolve().parents[2]
DOCS = [*sorted((ROOT / "docs").glob("**/*.md")), ROOT / "README.md"]
BIN = Path(sys.executable).parent
FENCE = re.compile(r"^(\s*)```(\S*)")
MARKER = re.compile(r"<!--\s*([a-z-]+)\s*-->")


@dataclass(frozen=True)
class Sample:
    path: Path
    line: int
    lang: str
    code: str
    marker: str | None

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def extract(path: Path) -> list[Sample]:
    lines = path.read_text("utf-8").splitlines()
    samples: list[Sample] = []
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if match:
            indent, lang = match.groups()
            j = i + 1
            while not re.match(r"^\s*```\s*$", lines[j]):
                j += 1
            body = "\n".join(line[len(indent) :] for line in lines[i + 1 : j]) + "\n"
            previous = next((lines[k] for k in range(i - 1, -1, -1) if lines[k].strip()), "")
            marker = MARKER.search(previous)
            samples.append(
                Sample(path, i + 1, lang.lower(), body, marker.group(1) if marker else None)
            )
            i = j
        i += 1
    return samples


SAMPLES = [sample for path in DOCS for sample in extract(path)]


def of(*langs: str) -> list[Sample]:
    return [s for s in SAMPLES if s.lang in langs]


def ids(samples: list[Sample]) -> list[str]:
    return [s.id for s in samples]


def test_markers_are_known() -> None:
    for sample in SAMPLES:
        assert sample.marker in (None, "fragment", "compile-only"), sample.id


@pytest.mark.parametrize("sample", of("yaml", "yml"), ids=ids(of("yaml", "yml")))
def test_yaml_sample(sample: Sample) -> None:
    yaml.safe_load(sample.code)
    if "initial_state:" in sample.code and sample.marker != "fragment":
        parse_definition(sample.code, sample.id, ActionLoader())


@pytest.mark.parametrize("sample", of("json", "toml"), ids=ids(of("json", "toml")))
def test_data_sample(sample: Sample) -> None:
    if sample.lang == "json":
        json.loads(sample.code)
    else:
        tomllib.loads(sample.code)


def quickstart_worker() -> str:
    (sample,) = [
        s for s in of("yaml") if s.path.name == "quickstart.md" and "initial_state:" in s.code
    ]
    return sample.code


@pytest.mark.parametrize("sample", of("python", "py"), ids=ids(of("python", "py")))
def test_python_sample(sample: Sample, tmp_path: Path) -> None:
    code = compile(sample.code, sample.id, "exec")
    if sample.marker == "compile-only":
        return
    del code
    (tmp_path / "worker.yaml").write_text(quickstart_worker())
    (tmp_path / "actions").mkdir()
    (tmp_path / "data").mkdir()
    script = tmp_path / "sample.py"
    script.write_text(sample.code)
    env = {k: v for k, v in os.environ.items() if not k.startswith("STATEMACHINE_")}
    # The test's own runtime directory: a sample's machine named `worker` must not meet one
    # of the same name that another test worker runs at the same time.
    env["STATEMACHINE_RUNTIME_DIR"] = os.environ["STATEMACHINE_RUNTIME_DIR"]
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, f"{sample.id}\n{result.stderr}"


PARSERS: dict[str, object] = {
    "statemachine": run.build_parser,
    "statemachine-cli": db.build_parser,
    "statemachine-db": db.build_parser,
    "statemachine-ui": ui.build_parser,
    "statemachine-fsm": fsm.build_parser,
    "statemachine-validate": validate.build_parser,
    "statemachine-up": up.build_parser,
    "statemachine-test": test.build_parser,
}


def command_lines(sample: Sample) -> list[list[str]]:
    """The `statemachine*` invocations in a shell sample, as argument lists."""
    commands = []
    for raw in sample.code.splitlines():
        line = raw.strip()
        if sample.lang == "console":
            if not line.startswith("$ "):
                continue
            line = line[2:]
        words = shlex.split(line, comments=True)
        while words and re.match(r"^[A-Z_]+=", words[0]):
            words = words[1:]
        if words and words[-1] == "&":
            words = words[:-1]
        if words and words[0] in PARSERS:
            words = [w for w in words if not w.startswith(">")]
            if ">" in words:
                words = words[: words.index(">")]
            commands.append(words)
    return commands


SHELL = [s for s in of("bash", "sh", "console", "shell") if command_lines(s)]


@pytest.mark.parametrize("sample", SHELL, ids=ids(SHELL))
def test_command_lines_parse(sample: Sample) -> None:
    for words in command_lines(sample):
        program, args = words[0], words[1:]
        build = PARSERS[program]
        if program == "statemachine" and args[:1] == ["up"]:
            build, args = up.build_parser, args[1:]
        elif program == "statemachine" and args[:1] == ["init"]:
            build, args = init.build_parser, args[1:]
        parser = build()  # type: ignore[operator]
        assert isinstance(parser, CliParser)
        parser.parse_args(args)


def test_every_program_is_documented() -> None:
    seen = {words[0] for sample in SHELL for words in command_lines(sample)}
    assert {"statemachine", "statemachine-cli", "statemachine-ui"} <= seen


def _shell_block(path: Path, needle: str) -> Sample:
    (sample,) = [s for s in of("bash") if s.path == path and needle in s.code]
    return sample


@pytest.mark.parametrize("doc", ["README.md", "docs/quickstart.md"])
def test_quickstart_runs(doc: str, tmp_path: Path) -> None:
    """The README's and the quickstart's worker and commands, run for real."""
    path = ROOT / doc
    (definition,) = [s for s in of("yaml") if s.path == path and "initial_state:" in s.code]
    (tmp_path / "worker.yaml").write_text(definition.code)
    blocks = [s for s in of("bash") if s.path == path and "statemachine" in s.code]
    lines = [
        line.strip()
        for block in blocks
        for line in block.code.splitlines()
        if line.strip().startswith("statemachine") and "statemachine-ui" not in line
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("STATEMACHINE_")}
    # the test's own runtime directory: the README's and the quickstart's `worker` may run
    # at the same time on two test workers
    env["STATEMACHINE_RUNTIME_DIR"] = os.environ["STATEMACHINE_RUNTIME_DIR"]
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    worker: subprocess.Popen[str] | None = None
    try:
        for line in lines:
            words = shlex.split(line, comments=True)
            words[0] = str(BIN / words[0])
            if words[-1] == "&":
                worker = subprocess.Popen(
                    words[:-1], cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True
                )
                continue
            result = subprocess.run(
                words, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
            )
            assert result.returncode == 0, (line, result.stdout, result.stderr)
            if words[1] == "add-job":
                _wait_until_done(tmp_path, env)
        assert worker is not None, "no background worker in the quickstart"
        assert worker.wait(timeout=30) == 0
        listing = subprocess.run(
            [str(BIN / "statemachine-cli"), "list-jobs", "--json"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
        jobs = json.loads(listing)
        assert jobs and all(job["status"] == "completed" for job in jobs), jobs
    finally:
        if worker is not None and worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=10)


def _wait_until_done(cwd: Path, env: dict[str, str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        out = subprocess.run(
            [str(BIN / "statemachine-cli"), "list-jobs", "--json"],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
        jobs = json.loads(out)
        if jobs and all(job["status"] == "completed" for job in jobs):
            return
        time.sleep(0.1)
    raise AssertionError(f"jobs not completed: {out}")


MERMAID = of("mermaid")
NODE_TOOLS = ROOT / "tests" / "tools" / "node"


def test_mermaid_samples_parse(tmp_path: Path) -> None:
    """Every diagram in the docs parses in the real Mermaid library (the test-only Node
    packages of tests/tools, from `make install`)."""
    assert MERMAID
    node = shutil.which("node")
    if node is None or not (NODE_TOOLS / "node_modules" / "mermaid").is_dir():
        message = "node or tests/tools/node/node_modules missing: run `make install`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    files = []
    for n, sample in enumerate(MERMAID):
        path = tmp_path / f"{n}.mmd"
        path.write_text(sample.code)
        files.append(str(path))
    proc = subprocess.run(
        [node, "parse_mermaid.mjs", *files],
        cwd=NODE_TOOLS,
        capture_output=True,
        text=True,
        timeout=60,
    )
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(results) == len(files), proc.stderr
    failed = [(MERMAID[files.index(r["file"])].id, r.get("error")) for r in results if not r["ok"]]
    assert failed == []
