"""statemachine-validate --format sarif: SARIF 2.1.0 that code-scanning UIs accept, checked
against the published schema; --select, --ignore and --quiet."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from statemachine_engine.cli.validate import main
from statemachine_engine.tools.lint import CODES

from .conftest import run_node

BROKEN = """\
initial_state: a
states: [a, b, c]
actions:
  a:
    - {type: bash, commnd: "true"}
transitions:
  - {from: a, to: b, event: go}
"""
WARNED = """\
initial_state: a
states: [a, b, orphan]
actions:
  a: [{type: log, message: hi, success: go}]
transitions:
  - {from: a, to: b, event: go}
"""


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_sarif_output_satisfies_the_sarif_schema(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "broken.yaml").write_text(BROKEN)
    (tmp_path / "warned.yaml").write_text(WARNED)
    docs = []
    for name in ("broken.yaml", "warned.yaml"):
        code, out, _ = run([name, "--format", "sarif"], capsys)
        assert code == (2 if name == "broken.yaml" else 1)
        doc = tmp_path / f"{name}.sarif"
        doc.write_text(out)
        docs.append(str(doc))
    results = run_node("check_sarif.mjs", *docs)
    assert [r["ok"] for r in results] == [True, True], results

    log = json.loads((tmp_path / "broken.yaml.sarif").read_text())
    (sarif_run,) = log["runs"]
    rules = {rule["id"] for rule in sarif_run["tool"]["driver"]["rules"]}
    assert rules == set(CODES)
    by_rule = {r["ruleId"]: r for r in sarif_run["results"]}
    unknown = by_rule["SM112"]
    assert unknown["level"] == "error"
    location = unknown["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "broken.yaml"
    assert location["region"] == {"startLine": 5, "startColumn": 20}
    assert "did you mean 'command'?" in unknown["message"]["text"]


def test_a_broken_document_fails_the_schema_check(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sarif"
    bad.write_text(json.dumps({"version": "2.1.0", "runs": [{"results": []}]}))
    assert [r["ok"] for r in run_node("check_sarif.mjs", str(bad))] == [False]


def test_select_ignore_and_quiet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "warned.yaml"
    path.write_text(WARNED)
    code, out, err = run([str(path)], capsys)
    assert code == 1 and "SM101" in out and "checked" in err
    code, out, err = run([str(path), "--ignore", "SM101", "--quiet"], capsys)
    assert (code, out, err) == (0, "", "")
    code, out, _ = run([str(path), "--select", "sm101,SM105"], capsys)
    assert code == 1 and "SM101" in out
    code, out, _ = run([str(path), "--select", "SM105"], capsys)
    assert (code, out) == (0, "")


def test_an_unknown_code_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "warned.yaml"
    path.write_text(WARNED)
    assert main([str(path), "--ignore", "SM999"]) == 2
    assert "unknown code SM999" in capsys.readouterr().err


def test_the_pre_commit_hook_runs_the_validator() -> None:
    import yaml

    hooks = yaml.safe_load((Path(__file__).parents[2] / ".pre-commit-hooks.yaml").read_text())
    (hook,) = hooks
    assert hook["id"] == "statemachine-validate"
    assert hook["entry"].split()[0] == "statemachine-validate"
