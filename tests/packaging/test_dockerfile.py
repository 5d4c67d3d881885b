"""The Dockerfile: built and run where a Docker daemon answers; everywhere, checked
against the repository it builds from (no hadolint here, so a small, honest lint)."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import tomllib
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

# Builds from the source tree: these run one after another on one test worker.
pytestmark = pytest.mark.xdist_group("source-tree")

ROOT = Path(__file__).resolve().parents[2]
INSTRUCTIONS = {
    "FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME",
    "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL",
}  # fmt: skip
#: What setup.py and pyproject.toml need to build the wheel.
BUILD_INPUTS = (
    "pyproject.toml",
    "setup.py",
    "MANIFEST.in",
    "README.md",
    "LICENSE",
    "src",
    "examples",
)
MERMAID = "src/statemachine_engine/monitoring/static/vendor/mermaid.min.js"


@dataclass
class Stage:
    image: str
    name: str | None
    lines: list[tuple[str, str]] = field(default_factory=list)


def parse(text: str) -> list[Stage]:
    """The Dockerfile's stages with their (INSTRUCTION, arguments), continuations joined;
    an unknown instruction or one before the first FROM fails the test."""
    joined = re.sub(r"\\\n", " ", text)
    stages: list[Stage] = []
    for raw in joined.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        assert word.upper() == word and word in INSTRUCTIONS, f"unknown instruction: {line}"
        if word == "FROM":
            parts = rest.split()
            assert len(parts) in (1, 3), line
            stages.append(Stage(parts[0], parts[2] if len(parts) == 3 else None))
            continue
        assert stages, f"{word} before the first FROM"
        stages[-1].lines.append((word, rest.strip()))
    return stages


def _pattern(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regex: `*` and `?` within one path element, `**/` any
    number of folders (as Go's filepath.Match plus Docker's `**`)."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        else:
            out += {"*": "[^/]*", "?": "[^/]"}.get(pattern[i], re.escape(pattern[i]))
            i += 1
    return re.compile(out)


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore leaves `path` (or a folder above it) out of the build context."""
    parts = Path(path).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(_pattern(p).fullmatch(prefix) for p in patterns for prefix in prefixes)


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse((ROOT / "Dockerfile").read_text())


@pytest.fixture(scope="module")
def ignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [p.strip() for p in lines if p.strip() and not p.startswith("#")]


def test_stages_are_pinned_and_named(stages: list[Stage]) -> None:
    names = [s.name for s in stages]
    for stage in stages:
        assert ":" in stage.image and not stage.image.endswith(":latest"), stage.image
        for word, args in stage.lines:
            if word == "COPY" and args.startswith("--from="):
                source = args.split()[0].removeprefix("--from=")
                assert source in names[: stages.index(stage)], f"COPY from unknown stage {source}"
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    floor = tuple(int(x) for x in requires.removeprefix(">=").split("."))
    final = stages[-1].image
    assert final.startswith("python:"), final
    version = tuple(int(x) for x in final.split(":")[1].split("-")[0].split("."))
    assert version >= floor, (final, requires)


def test_copied_sources_exist_and_reach_the_context(
    stages: list[Stage], ignore_patterns: list[str]
) -> None:
    copied: list[str] = []
    for stage in stages:
        for word, args in stage.lines:
            if word in ("COPY", "ADD") and not args.startswith("--from="):
                *sources, _dest = shlex.split(args)
                copied += sources
    assert set(BUILD_INPUTS) <= {Path(s).parts[0] for s in copied}, copied
    for source in copied:
        assert (ROOT / source).exists(), source
        assert not ignored(source, ignore_patterns), f".dockerignore drops {source}"
    for needed in ("src/statemachine_engine/cli/init.py", "examples/controller_worker/system.yaml"):
        assert not ignored(needed, ignore_patterns), needed
    for dropped in (".venv/bin/python", "data/statemachine.db", MERMAID, ".git/HEAD"):
        assert ignored(dropped, ignore_patterns), dropped


def test_wheel_gets_mermaid_and_the_image_runs_the_project(stages: list[Stage]) -> None:
    copies = [a for s in stages for w, a in s.lines if w == "COPY" and a.startswith("--from=ui")]
    assert any(a.split()[-1].endswith(MERMAID) for a in copies), copies
    final = dict(stages[-1].lines)
    assert final["USER"] not in ("root", "0")
    assert json.loads(final["ENTRYPOINT"]) == ["statemachine"]  # exec form: signals reach it
    assert json.loads(final["CMD"]) == ["up", "system.yaml", "--no-ui"]
    runs = " && ".join(a for w, a in stages[-1].lines if w == "RUN")
    assert "[postgres]" in runs, "the image speaks to PostgreSQL too"
    assert "statemachine init ." in runs, "the image carries a starter project for its CMD"


def test_lint_catches_mistakes(ignore_patterns: list[str]) -> None:
    with pytest.raises(AssertionError, match="unknown instruction"):
        parse("FROM python:3.12\nCOPPY . .\n")
    with pytest.raises(AssertionError, match="before the first FROM"):
        parse("RUN true\n")
    assert ignored("src/x.py", ["src"]) and ignored("a/b/__pycache__/x.pyc", ["**/__pycache__"])
    assert ignored("__pycache__", ["**/__pycache__"]) and ignored(".venv-x/y", [".venv*"])
    assert not ignored("srcs", ["src"]) and not ignored("a/b.pyc", ["*.pyc"])
    assert not ignored("examples", ignore_patterns)


def _daemon_answers() -> bool:
    try:
        result = subprocess.run(
            ["docker", "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


@pytest.mark.timeout(1200)
def test_image_builds_and_runs() -> None:
    if not _daemon_answers():
        pytest.skip("no Docker daemon answers here; the Dockerfile is linted above")
    tag = f"statemachine-engine-test:{uuid.uuid4().hex[:12]}"
    subprocess.run(["docker", "build", "-t", tag, str(ROOT)], check=True, timeout=1100)
    try:
        version = subprocess.run(
            ["docker", "run", "--rm", tag, "--version"],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout
        assert version.startswith("statemachine-engine ")
        subprocess.run(
            ["docker", "run", "--rm", "--entrypoint", "statemachine-validate", tag, "system.yaml"],
            check=True,
            timeout=120,
        )
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, timeout=120)
