"""The JSON Schema: shipped file up to date, every example config valid, bad files caught."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from statemachine_engine.cli.validate import main as validate_main
from statemachine_engine.config.loader import TOP_LEVEL_KEYS
from statemachine_engine.config.yamlsource import plain, read_yaml
from statemachine_engine.tools.schema import build_schema, schema_text, shipped_schema_path

from .conftest import EXAMPLE_CONFIGS, run_node


def as_json(config: Path, out: Path) -> str:
    target = out / f"{config.parent.name}__{config.stem}.json"
    target.write_text(json.dumps(plain(read_yaml(config.read_text(), str(config)))))
    return str(target)


def test_shipped_schema_file_is_current() -> None:
    assert shipped_schema_path().read_text() == schema_text()


def test_schema_knows_every_top_level_key() -> None:
    assert set(TOP_LEVEL_KEYS) <= set(build_schema()["properties"])


def test_validate_schema_flag_prints_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert validate_main(["--schema"]) == 0
    assert json.loads(capsys.readouterr().out) == build_schema()


def test_every_example_config_satisfies_the_schema(tmp_path: Path) -> None:
    docs = [as_json(c, tmp_path) for c in EXAMPLE_CONFIGS]
    results = run_node("check_schema.mjs", str(shipped_schema_path()), *docs)
    assert [r for r in results if not r["ok"]] == []
    assert len(results) == len(EXAMPLE_CONFIGS)


MALFORMED = [
    "initial_state: a\ntransitions:\n  - {from: a, event: go}\n",
    "initial_state: a\nstates: [a]\nbogus: 1\n",
    "states: [a]\n",
    "initial_state: a\nactions:\n  a:\n    - {command: ls}\n",
    "initial_state: a\ntemplate: 'yes'\n",
    "initial_state: a\nactions:\n  a:\n    - {type: bash, timeout: soon}\n",
    "initial_state: a\nactions:\n  a:\n    - {type: bash, commnd: ls}\n",
    "initial_state: a\nactions:\n  a:\n    - {type: bash, params: {command: ls, tiemout: 3}}\n",
    "initial_state: a\nactions:\n  a:\n    - {type: claim_job}\n",
    "initial_state: a\noptions: {on_eror: a}\n",
]


def test_schema_rejects_malformed_files(tmp_path: Path) -> None:
    docs = []
    for index, text in enumerate(MALFORMED):
        doc = tmp_path / f"bad{index}.json"
        doc.write_text(json.dumps(plain(read_yaml(text, "bad.yaml"))))
        docs.append(str(doc))
    results = run_node("check_schema.mjs", str(shipped_schema_path()), *docs)
    assert [r["ok"] for r in results] == [False] * len(MALFORMED)
