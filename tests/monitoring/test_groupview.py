"""Big definitions drawn by groups: the overview has one node per group, each group view
its own states plus one node per group it connects to, and state ids map to those nodes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from statemachine_engine.config.loader import parse_definition
from statemachine_engine.core import ActionLoader
from statemachine_engine.monitoring.definitions import definition_view

from .conftest import WORKER

PIPELINE = Path(__file__).resolve().parents[1] / "ui" / "definitions" / "pipeline33.yaml"


def view_of(text: str) -> dict[str, Any]:
    definition = parse_definition(text, "def.yaml", ActionLoader())
    return definition_view(definition.digest, "def", text).to_dict()


def nodes(mermaid: str) -> dict[str, str]:
    return {m[2]: m[1] for m in re.finditer(r'state "([^"]*)" as (\S+)', mermaid)}


def test_a_small_definition_is_drawn_whole() -> None:
    assert view_of(WORKER)["views"] is None


def test_the_overview_has_one_node_per_group_and_edges_between_groups() -> None:
    views = view_of(PIPELINE.read_text())["views"]
    overview = views["overview"]
    shown = nodes(overview["mermaid"])
    assert sorted(shown.values()) == [
        "Delivery (5)",
        "Intake (7)",
        "Processing (8)",
        "Review (6)",
        "Validation (7)",
        "any state",
    ]
    assert "g0__ --> g1__ : start_validation" in overview["mermaid"]
    assert "[*] --> g0__" in overview["mermaid"]
    assert not re.search(r"(g\d__) --> \1\b", overview["mermaid"])  # no arrow inside a group
    # the current state lights its group; the inner step of a group has no arrow here
    assert overview["ids"]["reviewing"] == views["group_ids"]["Review"]
    inner = [t for t in overview["transitions"] if t["from"] == "received"]
    assert inner and all(t["edge"] is None for t in inner)
    across = next(t for t in overview["transitions"] if t["event"] == "start_validation")
    assert across["edge"] == 1  # after the [*] arrow, edge 0


def test_a_group_view_shows_its_states_and_its_neighbours_as_groups() -> None:
    views = view_of(PIPELINE.read_text())["views"]
    review = views["groups"]["Review"]
    shown = set(nodes(review["mermaid"]).values())
    assert {"awaiting_review", "reviewing", "approved", "escalated"} <= shown
    assert {"Processing (group)", "Delivery (group)"} <= shown
    assert "received" not in shown and "Intake (group)" not in shown
    assert review["ids"]["reviewing"] == review["ids"]["reviewing"].replace("g", "s")
    assert review["ids"]["packaging"] == views["group_ids"]["Delivery"]
    assert "[*] -->" not in review["mermaid"]
    first = next(t for t in review["transitions"] if t["from"] == "awaiting_review")
    assert first["edge"] == 0  # no [*] arrow in this view: numbering starts at 0
    total = sum(len(set(nodes(v["mermaid"])) - {"any__"}) for v in views["groups"].values())
    assert total > 33  # every state once, plus the neighbour nodes
