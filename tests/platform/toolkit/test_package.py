"""The toolkit's public surface: ``__all__``, the lazy table and the submodules agree."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil

import sbiplug.toolkit as toolkit


def _submodules() -> list[str]:
    return [m.name for m in pkgutil.iter_modules(toolkit.__path__) if not m.name.startswith("_")]


def test_every_public_name_of_every_submodule_is_exported_once():
    exported: dict[str, str] = {}
    for name in _submodules():
        module = importlib.import_module(f"sbiplug.toolkit.{name}")
        for public in module.__all__:
            assert public not in exported, f"{public} is defined in {exported.get(public)} too"
            exported[public] = name
    assert sorted(toolkit.__all__) == sorted(exported)


def test_each_name_resolves_to_its_submodule_object():
    for name in toolkit.__all__:
        value = getattr(toolkit, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert value.__module__.startswith("sbiplug.toolkit."), (name, value.__module__)
    assert set(toolkit.__all__) <= set(dir(toolkit))


def test_type_checking_imports_match_all():
    tree = ast.parse(inspect.getsource(toolkit))
    imported = {"lazy_exports"}
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            for statement in node.body:
                imported.update(alias.name for alias in statement.names)
    assert imported == set(toolkit.__all__)


def test_the_toolkit_imports_no_other_host_module():
    # The toolkit is the bottom layer: host modules and plugins build on it, never the reverse.
    for name in _submodules():
        source = inspect.getsource(importlib.import_module(f"sbiplug.toolkit.{name}"))
        for node in ast.walk(ast.parse(source)):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.startswith("sbiplug")
            ):
                assert node.module.startswith("sbiplug.toolkit"), (name, node.module)
