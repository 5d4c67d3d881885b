"""How `statemachine-validate` scales with the size of a definition, and how fast deep
nesting is refused: `python bench/validate_scale.py` prints one line per size."""

from __future__ import annotations

import contextlib
import sys
import tempfile
import time
from pathlib import Path

from statemachine_engine.config import parse_definition
from statemachine_engine.core import ActionLoader
from statemachine_engine.errors import ConfigError
from statemachine_engine.tools.validate import validate


def chain(transitions: int) -> str:
    """States s0..sN, each with a forward and a self transition and one log action."""
    count = transitions // 2
    lines = [
        "name: big",
        "initial_state: s0",
        "states: [" + ", ".join(f"s{i}" for i in range(count)) + "]",
        "events: [go, again]",
        "actions:",
    ]
    lines += [f"  s{i}: [{{type: log, message: hi, success: go}}]" for i in range(count)]
    lines.append("transitions:")
    for i in range(count):
        target = f"s{i + 1}" if i + 1 < count else f"s{i}"
        lines.append(f"  - {{from: s{i}, to: {target}, event: go}}")
        lines.append(f"  - {{from: s{i}, to: s{i}, event: again}}")
    return "\n".join(lines) + "\n"


def main(sizes: list[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            path = Path(tmp) / f"big{size}.yaml"
            path.write_text(chain(size))
            started = time.perf_counter()
            validate([path])
            print(f"validate {size:>6} transitions: {time.perf_counter() - started:6.2f} s")
    deep = "initial_state: a\nstates: [a]\ncontext: {x: " + "[" * 5000 + "]" * 5000 + "}\n"
    started = time.perf_counter()
    with contextlib.suppress(ConfigError):
        parse_definition(deep, "deep.yaml", ActionLoader())
    print(f"refuse 5,000 nested levels: {(time.perf_counter() - started) * 1000:6.1f} ms")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1000, 2500, 5000, 10000])
