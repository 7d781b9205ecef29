"""pytest fixtures for plugin authors: a fresh plugin manager and throw-away plugins."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from sbiplug.plugins import PluginInfo, PluginManager

__all__ = ["isolated_plugin_manager", "plugin_manager", "register_plugin"]


@contextmanager
def isolated_plugin_manager(*, load_entry_points: bool = False) -> Iterator[PluginManager]:
    """Install a fresh plugin manager as ``sbiplug``'s cached one; restore the old one after.

    Arguments:
        load_entry_points: Also load installed entry-point plugins (built-ins always load).
    """
    from sbiplug.plugins import PluginManager, reset_plugin_manager

    manager = PluginManager(load_entry_points=load_entry_points)
    previous = reset_plugin_manager(manager)
    try:
        yield manager
    finally:
        reset_plugin_manager(previous)


@pytest.fixture
def plugin_manager() -> Iterator[PluginManager]:
    """A fresh plugin manager with the built-in plugins only, installed for one test.

    Entry-point plugins are not loaded, so what is installed does not change the test; add
    plugins with the ``register_plugin`` fixture.
    """
    with isolated_plugin_manager() as manager:
        yield manager


@pytest.fixture
def register_plugin(plugin_manager: PluginManager) -> Callable[..., PluginInfo]:
    """``register_plugin(plugin, name=None, version="")`` into the test's plugin manager.

    Returns the plugin's ``PluginInfo``; a plugin that fails to load comes back with
    ``status == "failed"`` and the reason in ``error`` (and a warning), as in real use.
    """
    counter = iter(range(1_000_000))

    def register(plugin: object, name: str | None = None, *, version: str = "") -> PluginInfo:
        if name is None:
            name = getattr(plugin, "__name__", None) or f"test_plugin_{next(counter)}"
        return plugin_manager.register(plugin, name, version=version)

    return register
