"""The plugin manager: built-in plugins first, then the ``sbiplug`` entry-point group.

Every plugin is loaded in isolation. One that fails to import, implements an unknown hook,
raises in a hook or yields an invalid spec is skipped with a :class:`SbiplugPluginWarning` and
listed as failed; the others keep working. Two plugins contributing the same name is an error
that names both. ``SBIPLUG_DISABLE_PLUGINS=a,b`` blocks plugins by name and
``SBIPLUG_LOAD_PLUGINS=a,b`` loads only those entry-point plugins (built-ins always load unless
disabled). The manager is created on first use and cached (:func:`get_plugin_manager`).
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import os
import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy

from sbiplug.errors import PluginConflictError, SbiplugPluginWarning, UnknownNameError
from sbiplug.hookspecs import CONTRIBUTION_HOOKS, PROJECT_NAME, SbiplugHookSpecs
from sbiplug.specs import SPEC_KINDS, Spec

__all__ = [
    "BUILTIN_PLUGINS",
    "ENTRY_POINT_GROUP",
    "PluginInfo",
    "PluginManager",
    "get_plugin_manager",
    "reset_plugin_manager",
]

ENTRY_POINT_GROUP = "sbiplug"
DISABLE_VARIABLE = "SBIPLUG_DISABLE_PLUGINS"
LOAD_ONLY_VARIABLE = "SBIPLUG_LOAD_PLUGINS"
BUILTIN_PLUGINS: dict[str, str] = {
    "sbiplug.simulators": "sbiplug.simulators.plugin",
    "sbiplug.estimators": "sbiplug.estimators.plugin",
    "sbiplug.diagnostics": "sbiplug.diagnostics.plugin",
}


@dataclass
class PluginInfo:
    """What ``sbiplug plugins`` shows about one plugin.

    ``status`` is ``"loaded"``, ``"failed"`` or ``"disabled"``; ``error`` says why it failed.
    """

    name: str
    version: str = ""
    status: str = "loaded"
    builtin: bool = False
    module: str = ""
    hooks: tuple[str, ...] = ()
    contributions: dict[str, tuple[str, ...]] = field(default_factory=dict)
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "status": self.status,
            "builtin": self.builtin,
            "module": self.module,
            "hooks": list(self.hooks),
            "contributions": {kind: list(names) for kind, names in self.contributions.items()},
            "error": self.error,
        }


def _names_from(environ: Mapping[str, str], variable: str) -> set[str] | None:
    raw = environ.get(variable)
    if raw is None:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


def _version_of(entry_point: EntryPoint) -> str:
    dist = getattr(entry_point, "dist", None)
    return str(getattr(dist, "version", "") or "")


class PluginManager:
    """Registers plugins and collects their validated specs.

    Arguments:
        load_entry_points: Also load the installed ``sbiplug`` entry points.
        builtins: Register the built-in simulators, estimators and diagnostics.
        environ: Where to read ``SBIPLUG_DISABLE_PLUGINS`` / ``SBIPLUG_LOAD_PLUGINS``.
    """

    def __init__(
        self,
        *,
        load_entry_points: bool = True,
        builtins: bool = True,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        environ = os.environ if environ is None else environ
        self._disabled = _names_from(environ, DISABLE_VARIABLE) or set()
        self._load_only = _names_from(environ, LOAD_ONLY_VARIABLE)
        self._pm = pluggy.PluginManager(PROJECT_NAME)
        self._pm.add_hookspecs(SbiplugHookSpecs)
        self._infos: dict[str, PluginInfo] = {}
        self._contributed: dict[str, dict[str, list[Spec]]] = {}
        if builtins:
            for name, module_name in BUILTIN_PLUGINS.items():
                if name in self._disabled:
                    self._infos[name] = PluginInfo(
                        name, status="disabled", builtin=True, module=module_name
                    )
                    continue
                self.register(importlib.import_module(module_name), name, builtin=True)
        if load_entry_points:
            self.load_entry_points()

    # -- registration -------------------------------------------------------------------------

    def _blocked(self, name: str, builtin: bool) -> bool:
        if name in self._disabled:
            return True
        return not builtin and self._load_only is not None and name not in self._load_only

    def load_entry_points(self, group: str = ENTRY_POINT_GROUP) -> None:
        """Load every installed plugin of the entry-point ``group``, each in isolation."""
        for entry_point in entry_points(group=group):
            name = entry_point.name
            if name in self._infos:
                continue
            version = _version_of(entry_point)
            if self._blocked(name, builtin=False):
                self._infos[name] = PluginInfo(
                    name, version, status="disabled", module=entry_point.value
                )
                continue
            try:
                plugin = entry_point.load()
            except Exception as error:  # a broken plugin must not break the others
                self._fail(PluginInfo(name, version, module=entry_point.value), error, "import")
                continue
            self.register(plugin, name, version=version)

    def register(
        self, plugin: object, name: str, *, version: str = "", builtin: bool = False
    ) -> PluginInfo:
        """Register ``plugin`` (a module or object with hook implementations) as ``name``.

        Returns the plugin's :class:`PluginInfo`; ``status`` tells whether it loaded.
        """
        module = getattr(plugin, "__name__", type(plugin).__name__)
        info = PluginInfo(name, version or _module_version(plugin), builtin=builtin, module=module)
        if self._blocked(name, builtin):
            info.status = "disabled"
            self._infos[name] = info
            return info
        if name in self._infos and self._infos[name].status == "loaded":
            raise PluginConflictError(f"a plugin named {name!r} is already registered")
        try:
            self._pm.register(plugin, name=name)
        except Exception as error:
            return self._fail(info, error, "registration")
        try:
            self._pm.check_pending()
        except pluggy.PluginValidationError as error:
            self._pm.unregister(name=name)
            return self._fail(info, error, "hook validation")
        try:
            contributed = self._collect(name)
        except Exception as error:
            self._pm.unregister(name=name)
            return self._fail(info, error, "contribution")
        self._contributed[name] = contributed
        info.hooks = tuple(
            sorted(
                hook
                for hook, impls in self._pm.hook.__dict__.items()
                if isinstance(impls, pluggy.HookCaller)
                and any(impl.plugin_name == name for impl in impls.get_hookimpls())
            )
        )
        info.contributions = {
            kind: tuple(spec.name for spec in specs) for kind, specs in contributed.items() if specs
        }
        self._infos[name] = info
        return info

    def unregister(self, name: str) -> None:
        """Remove a plugin and everything it contributed."""
        if self._pm.has_plugin(name):
            self._pm.unregister(name=name)
        self._contributed.pop(name, None)
        self._infos.pop(name, None)

    def _fail(self, info: PluginInfo, error: BaseException, stage: str) -> PluginInfo:
        info.status = "failed"
        info.error = f"{stage} failed: {type(error).__name__}: {error}"
        self._infos[info.name] = info
        warnings.warn(
            f"sbiplug plugin {info.name!r} skipped ({info.error})",
            SbiplugPluginWarning,
            stacklevel=3,
        )
        return info

    def _collect(self, name: str) -> dict[str, list[Spec]]:
        """Call ``name``'s contribution hooks and validate what they yield."""
        contributed: dict[str, list[Spec]] = {}
        for kind, hook_name in CONTRIBUTION_HOOKS.items():
            spec_type = SPEC_KINDS[kind]
            specs: list[Spec] = []
            caller: pluggy.HookCaller = getattr(self._pm.hook, hook_name)
            for impl in caller.get_hookimpls():
                if impl.plugin_name != name:
                    continue
                produced = impl.function()
                for spec in produced or ():
                    if not isinstance(spec, spec_type):
                        raise TypeError(
                            f"{hook_name} must yield {spec_type.__name__} objects, "
                            f"got {type(spec).__name__}"
                        )
                    spec.__post_init__()  # re-validate: specs may have been mutated
                    specs.append(_with_plugin(spec, name))
            names = [spec.name for spec in specs]
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                raise ValueError(f"{hook_name} yielded the name(s) {duplicates} twice")
            contributed[kind] = specs
        return contributed

    # -- queries ------------------------------------------------------------------------------

    def plugins(self) -> list[PluginInfo]:
        """All known plugins, built-ins first, in registration order."""
        return list(self._infos.values())

    def specs(self, kind: str) -> dict[str, Spec]:
        """Every spec of ``kind`` (``"simulators"``, ...) by name; clashes raise."""
        if kind not in SPEC_KINDS:
            raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(SPEC_KINDS)}")
        found: dict[str, Spec] = {}
        for plugin_name, contributed in self._contributed.items():
            for spec in contributed.get(kind, ()):
                if spec.name in found:
                    other = found[spec.name].plugin
                    raise PluginConflictError(
                        f"{SPEC_KINDS[kind].kind} {spec.name!r} is contributed by both plugin "
                        f"{other!r} and plugin {plugin_name!r}; uninstall one or set "
                        f"{DISABLE_VARIABLE}={plugin_name}"
                    )
                found[spec.name] = spec
        return dict(sorted(found.items()))

    def get(self, kind: str, name: str) -> Spec:
        """The spec of ``kind`` called ``name``; unknown names raise :class:`UnknownNameError`."""
        specs = self.specs(kind)
        try:
            return specs[name]
        except (KeyError, TypeError):
            raise UnknownNameError(SPEC_KINDS[kind].kind, name, specs) from None


def _with_plugin(spec: Spec, plugin: str) -> Spec:
    return dataclasses.replace(spec, plugin=plugin)


def _module_version(plugin: object) -> str:
    version = getattr(plugin, "__version__", "")
    if version:
        return str(version)
    top = (getattr(plugin, "__package__", None) or "").split(".")[0]
    if not top:
        return ""
    try:
        return importlib.metadata.version(top)
    except importlib.metadata.PackageNotFoundError:
        return ""


_manager: PluginManager | None = None
_lock = threading.Lock()


def get_plugin_manager() -> PluginManager:
    """The process-wide plugin manager, created on first use."""
    global _manager
    if _manager is None:
        with _lock:
            if _manager is None:
                _manager = PluginManager()
    return _manager


def reset_plugin_manager(manager: PluginManager | None = None) -> PluginManager | None:
    """Drop (or replace) the cached manager; returns the previous one. Meant for tests."""
    global _manager
    with _lock:
        previous, _manager = _manager, manager
    return previous
