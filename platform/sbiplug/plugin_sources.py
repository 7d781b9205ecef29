"""What the host learns about a plugin without running it: distribution, file, declared names.

Everything here reads metadata and source files only: no plugin code is executed and nothing
heavy (torch, sbi) is imported, so ``sbiplug plugins`` stays fast and a broken or disabled
plugin can still be described. Warnings about a plugin are attributed to the plugin's own file
and shown once per process (:func:`warn_about_plugin`).
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib.machinery import ModuleSpec
from importlib.metadata import EntryPoint
from pathlib import Path
from types import TracebackType
from typing import Any

from sbiplug.errors import SbiplugPluginWarning

__all__ = [
    "HOST_DISTRIBUTION",
    "DeclaredNames",
    "PluginLocation",
    "declared_names",
    "distribution_of",
    "distribution_of_object",
    "find_module_spec",
    "host_version",
    "location_of",
    "missing_module",
    "warn_about_plugin",
]

HOST_DISTRIBUTION = "sbiplug"
_SPEC_CLASSES = {
    "SimulatorSpec": "simulators",
    "EstimatorSpec": "estimators",
    "DiagnosticSpec": "diagnostics",
    "TargetSpec": "targets",
    "EmbeddingNetSpec": "embedding_nets",
}
# One registry for the whole process, so the default warning filter shows each message once
# however many plugin managers are created (tests, notebooks, a CLI command that resets it).
_WARNING_REGISTRY: dict[Any, Any] = {}


@functools.cache
def host_version() -> str:
    """The installed version of the host distribution (``""`` when it is not installed)."""
    try:
        return importlib.metadata.version(HOST_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return ""


def distribution_of(entry_point: EntryPoint) -> tuple[str, str]:
    """``(name, version)`` of the distribution that declares ``entry_point``; ``""`` if unknown."""
    dist = getattr(entry_point, "dist", None)
    if dist is None:
        return "", ""
    name = getattr(dist, "name", None) or dist.metadata["Name"] or ""
    return str(name), str(dist.version or "")


def distribution_of_object(plugin: object) -> tuple[str, str]:
    """``(name, version)`` of the distribution of a plugin module registered by hand.

    Assumes the usual layout (top-level package named like the project); ``__version__``
    wins when the module has one. ``""`` when unknown.
    """
    version = str(getattr(plugin, "__version__", "") or "")
    top = (getattr(plugin, "__package__", None) or "").split(".")[0]
    if not top:
        return "", version
    try:
        metadata = importlib.metadata.metadata(top)
    except importlib.metadata.PackageNotFoundError:
        return "", version
    return str(metadata["Name"] or top), version or str(metadata["Version"] or "")


def find_module_spec(module_name: str) -> ModuleSpec | None:
    """The import spec of ``module_name``, found without executing it or its parent packages.

    ``importlib.util.find_spec`` imports the parents of a dotted name; this walks the meta-path
    finders with each parent's search locations instead, so it is as cheap as a directory
    lookup and never runs a plugin's ``__init__``.
    """
    module = sys.modules.get(module_name)
    if module is not None:
        return getattr(module, "__spec__", None) or ModuleSpec(module_name, None)
    parent_name, _, _ = module_name.rpartition(".")
    path: list[str] | None = None
    if parent_name:
        parent = sys.modules.get(parent_name)
        if parent is not None:
            path = getattr(parent, "__path__", None)
        else:
            parent_spec = find_module_spec(parent_name)
            path = None if parent_spec is None else parent_spec.submodule_search_locations
        if path is None:  # the parent is missing or is not a package
            return None
        path = list(path)
    for finder in sys.meta_path:
        find_spec = getattr(finder, "find_spec", None)
        if find_spec is None:
            continue
        try:
            spec = find_spec(module_name, path)
        except Exception:  # a third-party finder's bug must not hide the module
            continue
        if spec is not None:
            return spec
    return None


def missing_module(module_name: str) -> str | None:
    """The first of ``module_name`` and its parents that cannot be found, or ``None``."""
    parts = module_name.split(".")
    for end in range(1, len(parts) + 1):
        prefix = ".".join(parts[:end])
        if find_module_spec(prefix) is None:
            return prefix
    return None


def _module_file(module_name: str) -> str | None:
    spec = find_module_spec(module_name)
    origin = getattr(spec, "origin", None)
    if origin and origin not in ("built-in", "frozen") and Path(origin).is_file():
        return origin
    return None


@dataclass(frozen=True)
class DeclaredNames:
    """The names a plugin module's source declares, by kind; ``complete`` is False when some
    spec's name is not a literal string (so other names may exist)."""

    names: dict[str, frozenset[str]]
    complete: bool

    def provides(self, kind: str, name: str) -> bool:
        return name in self.names.get(kind, frozenset())


def declared_names(module_name: str) -> DeclaredNames | None:
    """Read ``module_name``'s source and collect the literal ``name=`` of its ``*Spec(...)`` calls.

    Used to explain why a name is missing when the plugin providing it is disabled or failed to
    load; the module is parsed, never executed. ``None`` when its source cannot be read.
    """
    filename = _module_file(module_name.partition(":")[0])
    if filename is None:
        return None
    try:
        modified = Path(filename).stat().st_mtime_ns
    except OSError:
        return None
    return _declared_in(filename, modified)


@functools.lru_cache(maxsize=64)
def _declared_in(filename: str, modified: int) -> DeclaredNames | None:
    try:
        tree = ast.parse(Path(filename).read_text(encoding="utf-8"), filename)
    except (OSError, SyntaxError, ValueError):
        return None
    names: dict[str, set[str]] = {}
    complete = True
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        kind = _SPEC_CLASSES.get(called)
        if kind is None:
            continue
        value = next((k.value for k in node.keywords if k.arg == "name"), None)
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            names.setdefault(kind, set()).add(value.value)
        else:
            complete = False
    return DeclaredNames({kind: frozenset(found) for kind, found in names.items()}, complete)


@dataclass(frozen=True)
class PluginLocation:
    """Where a warning about a plugin points: its file, a line in it and its module name."""

    filename: str
    lineno: int
    module: str


def _function_location(function: Callable[..., Any] | None) -> tuple[str, int] | None:
    code = getattr(getattr(function, "__func__", function), "__code__", None)
    if code is None:
        return None
    return code.co_filename, code.co_firstlineno


def location_of(
    plugin: object | None,
    module_name: str,
    *,
    error: BaseException | None = None,
    function: Callable[..., Any] | None = None,
) -> PluginLocation:
    """The plugin's file and the most telling line in it.

    Arguments:
        plugin: The registered object (a module, class or instance), or ``None`` when it never
            loaded; then the file is found from ``module_name`` without importing it.
        module_name: The plugin's module (an entry point's ``module:attr`` is accepted).
        error: An exception raised by the plugin: its deepest frame inside the plugin's file
            gives the line.
        function: A hook implementation: its first line is used when there is no error frame.
    """
    module_name = module_name.partition(":")[0]
    filename = getattr(plugin, "__file__", None) if plugin is not None else None
    if filename is None and plugin is not None:
        owner = plugin if isinstance(plugin, type) else type(plugin)
        filename = getattr(sys.modules.get(owner.__module__), "__file__", None)
    if filename is None:
        filename = _module_file(module_name)
    located = _function_location(function)
    if filename is None and located is not None:
        filename = located[0]
    if filename is None:
        return PluginLocation(f"<sbiplug plugin {module_name}>", 1, module_name)
    lineno = _deepest_line_in(filename, error.__traceback__) if error is not None else None
    if lineno is None and located is not None and located[0] == filename:
        lineno = located[1]
    return PluginLocation(filename, lineno or 1, module_name)


def _deepest_line_in(filename: str, traceback: TracebackType | None) -> int | None:
    lineno = None
    while traceback is not None:
        if traceback.tb_frame.f_code.co_filename == filename:
            lineno = traceback.tb_lineno
        traceback = traceback.tb_next
    return lineno


def warn_about_plugin(message: str, location: PluginLocation) -> None:
    """Emit a :class:`SbiplugPluginWarning` pointing at the plugin, once per process.

    The warning filters still decide: ``-W always`` or ``pytest.warns`` show it every time.
    """
    warnings.warn_explicit(
        message,
        SbiplugPluginWarning,
        location.filename,
        location.lineno,
        module=location.module,
        registry=_WARNING_REGISTRY,
    )
