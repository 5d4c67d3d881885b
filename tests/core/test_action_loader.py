"""ActionLoader: built-ins, actions directories, entry points, and names it must refuse."""

from __future__ import annotations

import importlib.metadata
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from statemachine_engine.actions.base import BaseAction
from statemachine_engine.actions.builtin import BUILTINS
from statemachine_engine.config import parse_definition
from statemachine_engine.core.loader import ENTRY_POINT_GROUP, ActionLoader, class_name
from statemachine_engine.errors import ConfigError

MACHINE = """\
name: m
initial_state: a
states: [a, b]
transitions:
  - {from: a, to: b, event: go}
actions:
  a:
    - type: %s
      path: /tmp/in.png
"""

CUSTOM = """
from statemachine_engine.actions.base import BaseAction

class ProcessFileAction(BaseAction):
    async def execute(self, context):
        context["processed"] = self.param("path", context)
        return "go"
"""

_imports: list[str] | None = None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    """Records module loading: `import` statements (module name), opening Python sources
    and executing module code (file names); importlib.import_module raises no `import`."""
    if _imports is None:
        return
    source = event == "open" and str(args[0]).endswith((".py", ".pyc"))
    if event == "import" or source:
        _imports.append(str(args[0]))
    elif event == "exec" and getattr(args[0], "co_filename", "<").startswith("/"):
        _imports.append(args[0].co_filename)


sys.addaudithook(_audit)


@contextmanager
def recorded_imports() -> Iterator[list[str]]:
    """Modules imported and Python files loaded inside the block, as audit events show them."""
    global _imports
    _imports = seen = []
    try:
        yield seen
    finally:
        _imports = None


def _write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


def test_class_name():
    assert class_name("process_file") == "ProcessFileAction"
    assert class_name("bash") == "BashAction"


def test_every_builtin_resolves_and_declares_what_it_provides():
    loader = ActionLoader(entry_points=())
    assert set(BUILTINS) <= loader.names()
    for name in BUILTINS:
        cls = loader.resolve(name)
        assert issubclass(cls, BaseAction)
        assert loader.provides(name) is not None, name


def test_released_package_builtins_are_registered():
    extra = {
        "activity_log",
        "claim_job",
        "get_pending_jobs",
        "wait_for_jobs",
        "add_to_list",
        "pop_from_list",
        "start_fsm",
    }
    assert extra <= ActionLoader(entry_points=()).names()


async def test_custom_action_from_an_actions_directory(tmp_path):
    _write(tmp_path / "actions", "process_file_action.py", CUSTOM)
    _write(tmp_path / "actions", "notes.py", "raise SystemExit('never imported')")
    loader = ActionLoader([tmp_path / "actions"], entry_points=())
    assert "process_file" in loader.names()
    assert "notes" not in loader.names()
    with recorded_imports() as seen:
        definition = parse_definition(MACHINE % "process_file", "m.yaml", loader)
    assert str(tmp_path / "actions" / "process_file_action.py") in seen
    assert not [m for m in seen if "notes" in m]
    action = loader.create(definition.entry_actions["a"][0])
    assert type(action).__name__ == "ProcessFileAction"
    assert loader.provides("process_file") is None
    context: dict[str, Any] = {}
    assert await action.execute(context) == "go"
    assert context["processed"] == "/tmp/in.png"
    assert loader.resolve("process_file") is type(action)


def _entry_point_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(
        tmp_path / "site",
        "sm_test_shout_plugin.py",
        """
        from statemachine_engine.actions.base import BaseAction

        class ShoutAction(BaseAction):
            provides = frozenset({"shouted"})

            async def execute(self, context):
                context["shouted"] = str(self.param("text", context)).upper()
                return None
        """,
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site"))


def _shout_entry_point() -> importlib.metadata.EntryPoint:
    return importlib.metadata.EntryPoint(
        name="shout", value="sm_test_shout_plugin:ShoutAction", group=ENTRY_POINT_GROUP
    )


async def test_entry_point_given_to_the_loader(tmp_path, monkeypatch):
    _entry_point_module(tmp_path, monkeypatch)
    loader = ActionLoader(entry_points=[_shout_entry_point()])
    assert "shout" in loader.names()
    with recorded_imports() as seen:
        assert loader.provides("shout") == frozenset({"shouted"})
    assert any(m.endswith("sm_test_shout_plugin.py") for m in seen)  # the hook sees loads
    action = loader.resolve("shout")({"text": "hi"})
    context: dict[str, Any] = {}
    await action.execute(context)
    assert context["shouted"] == "HI"


def test_entry_point_from_installed_metadata(tmp_path, monkeypatch):
    _entry_point_module(tmp_path, monkeypatch)
    asked: list[str] = []

    def fake_entry_points(*, group: str) -> list[importlib.metadata.EntryPoint]:
        asked.append(group)
        return [_shout_entry_point()]

    monkeypatch.setattr(importlib.metadata, "entry_points", fake_entry_points)
    loader = ActionLoader()
    assert asked == [ENTRY_POINT_GROUP]
    assert loader.resolve("shout").__name__ == "ShoutAction"


BAD_NAMES = ["../evil", "os.system", "a.b", "Evil", "x" * 200, "evil\n", "", "os:system"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_invalid_names_are_refused_without_any_import(tmp_path, monkeypatch, name):
    marker = tmp_path / "imported"
    evil = f"open({str(marker)!r}, 'w').close()\n"
    _write(tmp_path / "site", "evil.py", evil)
    _write(tmp_path / "site" / "os", "system.py", evil)
    _write(tmp_path / "actions", "evil.py", evil)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    loader = ActionLoader([tmp_path / "actions"], entry_points=())
    with recorded_imports() as seen:
        with pytest.raises(LookupError):
            loader.resolve(name)
        with pytest.raises(ConfigError):
            loader.provides(name)
    assert seen == []
    assert not marker.exists()


def test_unknown_name_imports_nothing_outside_the_action_dirs(tmp_path, monkeypatch):
    marker = tmp_path / "imported"
    evil = f"open({str(marker)!r}, 'w').close()\n"
    _write(tmp_path / "site", "evil.py", evil)
    _write(tmp_path / "site", "evil_action.py", evil)
    _write(tmp_path / "actions", "evil.py", evil)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    loader = ActionLoader([tmp_path / "actions"], entry_points=())
    with recorded_imports() as seen:
        with pytest.raises(LookupError, match="unknown action type 'evil'"):
            loader.resolve("evil")
        with pytest.raises(ConfigError, match="unknown action type"):
            parse_definition(MACHINE % "evil", "m.yaml", loader)
    assert not [m for m in seen if "evil" in m or str(tmp_path) in m]
    assert not marker.exists()


@pytest.mark.parametrize("name", ["../evil", "os.system", "Evil"])
def test_invalid_names_in_yaml_are_config_errors(tmp_path, name):
    loader = ActionLoader(entry_points=())
    with (
        recorded_imports() as seen,
        pytest.raises(ConfigError, match=r"m\.yaml:8:\d+: invalid action type"),
    ):
        parse_definition(MACHINE % f'"{name}"', "m.yaml", loader)
    assert not [m for m in seen if "evil" in m.lower() or m.startswith("os.")]


def test_module_that_raises_on_import_is_a_config_error_with_positions(tmp_path):
    runs = tmp_path / "runs"
    _write(
        tmp_path / "actions",
        "process_file_action.py",
        f"""
        open({str(runs)!r}, "a").write("x")
        import statemachine_engine
        value = 1 / 0
        """,
    )
    module = str(tmp_path / "actions" / "process_file_action.py")
    loader = ActionLoader([tmp_path / "actions"], entry_points=())
    with pytest.raises(ConfigError) as raised:
        parse_definition(MACHINE % "process_file", "m.yaml", loader)
    assert (raised.value.file, raised.value.line) == (module, 4)
    assert "ZeroDivisionError" in str(raised.value)
    spec = _spec(tmp_path, "process_file")
    with pytest.raises(ConfigError) as created:
        loader.create(spec)
    assert str(created.value).startswith("m.yaml:8:7: cannot load action 'process_file'")
    assert f"{module}:4:" in str(created.value)
    assert runs.read_text() == "x"
    assert not [m for m in list(sys.modules.values()) if getattr(m, "__file__", None) == module]
    with pytest.raises(ConfigError):
        loader.provides("process_file")
    assert runs.read_text() == "x"


def _spec(tmp_path: Path, action_type: str) -> Any:
    bare = MACHINE.replace("%s", "log").replace("path:", "message:")
    definition = parse_definition(bare, "m.yaml", ActionLoader(entry_points=()))
    spec = definition.entry_actions["a"][0]
    return type(spec)(type=action_type, params=spec.params, pos=spec.pos)


def test_syntax_error_names_line_and_column(tmp_path):
    _write(tmp_path / "actions", "process_file_action.py", "x = 1\ndef broken(:\n")
    loader = ActionLoader([tmp_path / "actions"], entry_points=())
    with pytest.raises(ConfigError) as raised:
        loader.provides("process_file")
    assert raised.value.line == 2
    assert "SyntaxError" in str(raised.value)


def test_class_that_is_not_a_base_action_is_refused(tmp_path):
    _write(tmp_path / "actions", "process_file_action.py", "class ProcessFileAction:\n    pass\n")
    loader = ActionLoader([tmp_path / "actions"], entry_points=())
    with pytest.raises(LookupError, match="not a BaseAction subclass"):
        loader.resolve("process_file")
    with pytest.raises(ConfigError, match="not a BaseAction subclass"):
        parse_definition(MACHINE % "process_file", "m.yaml", loader)
    with pytest.raises(ConfigError, match=r"^m\.yaml:8:7: .*not a BaseAction subclass"):
        loader.create(_spec(tmp_path, "process_file"))


def test_module_without_the_class_is_refused(tmp_path):
    _write(tmp_path / "actions", "process_file_action.py", "class Other:\n    pass\n")
    loader = ActionLoader([tmp_path / "actions"], entry_points=())
    with pytest.raises(LookupError, match="defines no class ProcessFileAction"):
        loader.resolve("process_file")


def test_failing_entry_point_is_a_config_error(tmp_path, monkeypatch):
    _write(tmp_path / "site", "sm_test_broken_plugin.py", "raise RuntimeError('boom')\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    ep = importlib.metadata.EntryPoint(
        name="broken", value="sm_test_broken_plugin:X", group=ENTRY_POINT_GROUP
    )
    loader = ActionLoader(entry_points=[ep])
    with pytest.raises(ConfigError, match=r"sm_test_broken_plugin.*RuntimeError: boom"):
        loader.provides("broken")


RELEASED_STYLE = """
from statemachine_engine.actions.base import BaseAction


class GreetAction(BaseAction):
    async def execute(self, context):
        params = self.config.get("params", {})
        context["greeting"] = f"{params.get('salutation', '?')}, {params.get('name', '?')}"
        return params.get("success", "success")
"""


async def test_custom_actions_written_for_the_released_package_see_their_params(
    tmp_path: Path,
) -> None:
    _write(tmp_path / "actions", "greet_action.py", RELEASED_STYLE)
    loader = ActionLoader([tmp_path / "actions"], entry_points=())
    for form in (
        "    - {type: greet, salutation: Hello, name: Ada, success: greeted}",
        "    - type: greet\n      params: {salutation: Hello, name: Ada, success: greeted}",
    ):
        text = MACHINE.replace("    - type: %s\n      path: /tmp/in.png", form)
        spec = parse_definition(text, "m.yaml", loader).entry_actions["a"][0]
        action = loader.create(spec)
        context: dict[str, Any] = {}
        assert await action.execute(context) == "greeted"
        assert context["greeting"] == "Hello, Ada"
