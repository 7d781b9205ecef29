"""Fake installed distributions for the plugin-manager tests.

``install`` writes a ``*.dist-info`` folder (metadata + ``sbiplug`` entry points) and plugin
modules into a folder on ``sys.path``, as pip would; the modules are dropped from
``sys.modules`` after the test so that the next test's modules of the same name are fresh.
"""

from __future__ import annotations

import sys
import textwrap
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sbiplug.errors import SbiplugPluginWarning
from sbiplug.plugins import PluginManager, reset_plugin_manager


def install_fake_distribution(
    root: Path,
    dist: str,
    entry_points: dict[str, str],
    modules: dict[str, str],
    *,
    version: str = "1.2.3",
) -> None:
    """Write a ``*.dist-info`` folder and plugin modules into ``root`` (put on sys.path)."""
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = "\n".join(f"{name} = {target}" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[sbiplug]\n{lines}\n")
    for module, source in modules.items():
        path = root / f"{module.replace('.', '/')}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh folder on ``sys.path`` standing for site-packages."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    before = set(sys.modules)
    yield root
    for name in set(sys.modules) - before:
        if str(getattr(sys.modules[name], "__file__", None) or "").startswith(str(root)):
            del sys.modules[name]


@pytest.fixture
def install(site: Path) -> Callable[..., None]:
    """``install(dist, entry_points, modules, version="1.2.3")`` into the test's ``site``."""

    def install(
        dist: str, entry_points: dict[str, str], modules: dict[str, str], **kwargs: str
    ) -> None:
        install_fake_distribution(site, dist, entry_points, modules, **kwargs)

    return install


@pytest.fixture
def quiet_manager() -> Callable[..., PluginManager]:
    """``quiet_manager(environ=None, **kwargs)``: a plugin manager reading ``environ`` (default:
    no variable set), its warnings silenced."""

    def make(environ: dict[str, str] | None = None, **kwargs: bool) -> PluginManager:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SbiplugPluginWarning)
            return PluginManager(environ=environ or {}, **kwargs)

    return make


@pytest.fixture
def installed_as_current() -> Iterator[Callable[[PluginManager], PluginManager]]:
    """Make a manager the process-wide one (what ``sbiplug.make_*`` use) for one test."""
    previous = reset_plugin_manager()

    def use(manager: PluginManager) -> PluginManager:
        reset_plugin_manager(manager)
        return manager

    yield use
    reset_plugin_manager(previous)
