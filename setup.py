"""Build hooks: a wheel or sdist without the UI's vendored Mermaid build fails here, loudly,
instead of shipping a monitoring page that cannot draw diagrams; and the repository's
`examples/` ship inside the wheel as `statemachine_engine/examples/` (`statemachine init`
copies them). Everything else about the package is declared in pyproject.toml."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist
from setuptools.errors import FileError

MERMAID = Path("src/statemachine_engine/monitoring/static/vendor/mermaid.min.js")
EXAMPLES = Path("examples")
EXAMPLE_JUNK = shutil.ignore_patterns("__pycache__", "*.pyc", "data", ".*")
MIN_BYTES = 1_000_000  # the real build is about 5 MB; less is a failed or partial fetch


def check_mermaid() -> None:
    path = Path(__file__).resolve().parent / MERMAID
    size = path.stat().st_size if path.is_file() else 0
    if size < MIN_BYTES:
        found = f"only {size} bytes" if size else "missing"
        raise FileError(
            f"{MERMAID} is {found}: the wheel and sdist must carry the UI's Mermaid build. "
            "Fetch it from npm first with `make ui-assets` (part of `make install`)."
        )


class BuildPy(build_py):
    def run(self) -> None:
        # An editable install serves the file from the source tree; `make install` fetches
        # it after the editable install, so only real builds insist on it.
        editable = getattr(self, "editable_mode", False)
        if not editable:
            check_mermaid()
        super().run()
        if not editable:  # an editable install reads them from the checkout
            target = Path(self.build_lib) / "statemachine_engine" / "examples"
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(Path(__file__).resolve().parent / EXAMPLES, target, ignore=EXAMPLE_JUNK)


class Sdist(sdist):
    def run(self) -> None:
        check_mermaid()
        super().run()


setup(cmdclass={"build_py": BuildPy, "sdist": Sdist})
