"""The plugin manager: built-in plugins first, then the ``sbiplug`` entry-point group.

Isolation is per plugin and per name:

- a plugin that fails to import, implements an unknown hook, raises in a hook or yields an
  invalid spec is skipped and listed as failed; the others keep working;
- a spec whose lazy ``"module:attr"`` factory names a module that cannot be found is marked
  failed (plugin and spec named); the plugin's other specs keep working;
- a name contributed by two plugins is disabled, with a warning naming both; requesting it is
  a :class:`PluginConflictError`; every other name keeps working;
- two entry points with the same name (say a third-party ``cmpe`` next to the bundled one) are
  both loaded and listed, as ``name@distribution``; what they contribute follows the rule above.

``SBIPLUG_DISABLE_PLUGINS=a,b`` blocks plugins by name (or ``name@distribution``) and
``SBIPLUG_LOAD_PLUGINS=a,b`` loads only those entry-point plugins (built-ins always load unless
disabled); asking for a name that a blocked plugin provides says so. Warnings point at the
plugin's file and are shown once per process. The manager is created on first use and cached
(:func:`get_plugin_manager`).
"""

from __future__ import annotations

import importlib
import os
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy

from sbiplug.contributions import HookError, collect
from sbiplug.errors import (
    FactoryImportError,
    PluginConflictError,
    UnavailableNameError,
    UnknownNameError,
)
from sbiplug.hookspecs import PROJECT_NAME, SbiplugHookSpecs
from sbiplug.plugin_sources import (
    HOST_DISTRIBUTION,
    declared_names,
    distribution_of,
    distribution_of_object,
    host_version,
    location_of,
    warn_about_plugin,
)
from sbiplug.specs import SPEC_KINDS, Spec

__all__ = [
    "BUILTIN_PLUGINS",
    "DISABLE_VARIABLE",
    "ENTRY_POINT_GROUP",
    "LOAD_ONLY_VARIABLE",
    "PluginInfo",
    "PluginManager",
    "get_plugin_manager",
    "reset_plugin_manager",
]

ENTRY_POINT_GROUP = "sbiplug"
DISABLE_VARIABLE = "SBIPLUG_DISABLE_PLUGINS"
LOAD_ONLY_VARIABLE = "SBIPLUG_LOAD_PLUGINS"
BUILTIN_PLUGINS: dict[str, str] = {
    "sbiplug.simulators": "sbiplug.builtin.simulators.plugin",
    "sbiplug.estimators": "sbiplug.builtin.estimators.plugin",
    "sbiplug.diagnostics": "sbiplug.builtin.diagnostics.plugin",
}
_NOT_LOADED_REASONS = {
    DISABLE_VARIABLE: f"is disabled by {DISABLE_VARIABLE}",
    LOAD_ONLY_VARIABLE: f"is not listed in {LOAD_ONLY_VARIABLE}",
}


@dataclass
class PluginInfo:
    """What ``sbiplug plugins`` shows about one plugin.

    ``name`` is unique in the manager: the entry point's name, or ``name@distribution`` when two
    installed entry points share a name. ``status`` is ``"loaded"``, ``"failed"`` (``error``
    says why) or ``"disabled"`` (``disabled_by`` names the variable). ``failed_specs`` maps a
    kind to the specs that could not be resolved and why; ``conflicts`` maps a kind to the
    names this plugin shares with others (those names are disabled) and the other plugins.
    """

    name: str
    version: str = ""
    status: str = "loaded"
    builtin: bool = False
    module: str = ""
    hooks: tuple[str, ...] = ()
    contributions: dict[str, tuple[str, ...]] = field(default_factory=dict)
    error: str = ""
    distribution: str = ""
    entry_point: str = ""
    disabled_by: str = ""
    failed_specs: dict[str, dict[str, str]] = field(default_factory=dict)
    conflicts: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "entry_point": self.entry_point,
            "status": self.status,
            "builtin": self.builtin,
            "module": self.module,
            "hooks": list(self.hooks),
            "contributions": {kind: list(names) for kind, names in self.contributions.items()},
            "error": self.error,
            "disabled_by": self.disabled_by,
            "failed_specs": {kind: dict(specs) for kind, specs in self.failed_specs.items()},
            "conflicts": {
                kind: {name: list(others) for name, others in names.items()}
                for kind, names in self.conflicts.items()
            },
        }


def _names_from(environ: Mapping[str, str], variable: str) -> set[str] | None:
    raw = environ.get(variable)
    if raw is None:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


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
        self._failed: dict[str, dict[str, dict[str, FactoryImportError]]] = {}
        self._seen_entry_points: set[tuple[str, str]] = set()
        if builtins:
            for name, module_name in BUILTIN_PLUGINS.items():
                info = PluginInfo(
                    name,
                    host_version(),
                    builtin=True,
                    module=module_name,
                    distribution=HOST_DISTRIBUTION,
                )
                if self._blocked_by(info):
                    self._infos[name] = info
                    continue
                self._register(importlib.import_module(module_name), info)
        if load_entry_points:
            self.load_entry_points()

    # -- registration -------------------------------------------------------------------------

    def _blocked_by(self, info: PluginInfo) -> str:
        """The variable that blocks ``info`` (``""`` when none); marks it disabled."""
        names = {info.name, info.entry_point or info.name}
        variable = ""
        if names & self._disabled:
            variable = DISABLE_VARIABLE
        elif not info.builtin and self._load_only is not None and not names & self._load_only:
            variable = LOAD_ONLY_VARIABLE
        if variable:
            info.status, info.disabled_by = "disabled", variable
        return variable

    def load_entry_points(self, group: str = ENTRY_POINT_GROUP) -> None:
        """Load every installed plugin of the entry-point ``group``, each in isolation.

        Entry points sharing a name are all loaded, as ``name@distribution``. The same entry
        point listed twice (stale metadata of one package) is loaded once.
        """
        found: list[EntryPoint] = []
        for entry_point in entry_points(group=group):
            key = (entry_point.name, entry_point.value)
            if key not in self._seen_entry_points:
                self._seen_entry_points.add(key)
                found.append(entry_point)
        counts = Counter(entry_point.name for entry_point in found)
        for entry_point in found:
            distribution, version = distribution_of(entry_point)
            name = entry_point.name
            if counts[name] > 1 or name in self._infos:
                name = self._unique(f"{name}@{distribution or 'unknown'}")
            info = PluginInfo(
                name,
                version,
                module=entry_point.value,
                distribution=distribution,
                entry_point=entry_point.name,
            )
            if self._blocked_by(info):
                self._infos[name] = info
                continue
            try:
                plugin = entry_point.load()
            except Exception as error:  # a broken plugin must not break the others
                self._fail(info, error, "import")
                continue
            self._register(plugin, info)

    def _unique(self, name: str) -> str:
        candidate, number = name, 2
        while candidate in self._infos:
            candidate, number = f"{name}#{number}", number + 1
        return candidate

    def register(
        self, plugin: object, name: str, *, version: str = "", builtin: bool = False
    ) -> PluginInfo:
        """Register ``plugin`` (a module or object with hook implementations) as ``name``.

        Returns the plugin's :class:`PluginInfo`; ``status`` tells whether it loaded.
        """
        if name in self._infos and self._infos[name].status == "loaded":
            raise PluginConflictError(f"a plugin named {name!r} is already registered")
        distribution, found_version = distribution_of_object(plugin)
        info = PluginInfo(
            name,
            version or found_version,
            builtin=builtin,
            module=getattr(plugin, "__name__", type(plugin).__name__),
            distribution=distribution,
        )
        if self._blocked_by(info):
            self._infos[name] = info
            return info
        return self._register(plugin, info)

    def _register(self, plugin: object, info: PluginInfo) -> PluginInfo:
        name = info.name
        try:
            self._pm.register(plugin, name=name)
        except Exception as error:
            return self._fail(info, error, "registration", plugin)
        try:
            self._pm.check_pending()
        except pluggy.PluginValidationError as error:
            self._pm.unregister(name=name)
            return self._fail(info, error, "hook validation", plugin)
        try:
            found = collect(self._pm, name)
        except HookError as wrapped:
            self._pm.unregister(name=name)
            return self._fail(info, wrapped.error, "contribution", plugin, wrapped.function)
        self._contributed[name] = found.specs
        self._failed[name] = found.unresolved
        info.hooks = tuple(sorted(hook.name for hook in found.hooks.values()))
        info.contributions = {
            kind: tuple(spec.name for spec in specs) for kind, specs in found.specs.items()
        }
        self._infos[name] = info
        for kind, errors in found.unresolved.items():
            where = location_of(plugin, info.module, function=found.hooks[kind].function)
            for error in errors.values():
                warn_about_plugin(str(error), where)
        for kind, specs in found.specs.items():
            where = location_of(plugin, info.module, function=found.hooks[kind].function)
            for spec in specs:
                contributors = self._contributors(kind, spec.name)
                if len(contributors) > 1:
                    warn_about_plugin(str(self._conflict(kind, spec.name, contributors)), where)
        return info

    def unregister(self, name: str) -> None:
        """Remove a plugin and everything it contributed."""
        if self._pm.has_plugin(name):
            self._pm.unregister(name=name)
        self._contributed.pop(name, None)
        self._failed.pop(name, None)
        self._infos.pop(name, None)

    def _fail(
        self,
        info: PluginInfo,
        error: BaseException,
        stage: str,
        plugin: object | None = None,
        function: Callable[..., Any] | None = None,
    ) -> PluginInfo:
        info.status = "failed"
        info.error = f"{stage} failed: {type(error).__name__}: {error}"
        self._infos[info.name] = info
        warn_about_plugin(
            f"sbiplug plugin {info.name!r} skipped ({info.error})",
            location_of(plugin, info.module, error=error, function=function),
        )
        return info

    # -- queries ------------------------------------------------------------------------------

    def plugins(self) -> list[PluginInfo]:
        """All known plugins, built-ins first, in registration order, with current conflicts."""
        for info in self._infos.values():
            info.failed_specs = {
                kind: {spec: error.reason for spec, error in errors.items()}
                for kind, errors in self._failed.get(info.name, {}).items()
            }
            info.conflicts = {}
            for kind, names in info.contributions.items():
                for spec_name in names:
                    others = [p for p in self._contributors(kind, spec_name) if p != info.name]
                    if others:
                        info.conflicts.setdefault(kind, {})[spec_name] = tuple(others)
        return list(self._infos.values())

    def _contributors(self, kind: str, name: str) -> list[str]:
        return [
            plugin
            for plugin, contributed in self._contributed.items()
            if any(spec.name == name for spec in contributed.get(kind, ()))
        ]

    def _by_name(self, kind: str) -> dict[str, list[Spec]]:
        if kind not in SPEC_KINDS:
            raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(SPEC_KINDS)}")
        found: dict[str, list[Spec]] = {}
        for contributed in self._contributed.values():
            for spec in contributed.get(kind, ()):
                found.setdefault(spec.name, []).append(spec)
        return found

    def specs(self, kind: str) -> dict[str, Spec]:
        """Every usable spec of ``kind`` (``"simulators"``, ...) by name.

        A name contributed by two plugins is left out (see :meth:`conflicts`), and so is a spec
        whose factory cannot be resolved (see :meth:`failed_specs`).
        """
        found = self._by_name(kind)
        return {name: specs[0] for name, specs in sorted(found.items()) if len(specs) == 1}

    def conflicts(self, kind: str) -> dict[str, tuple[str, ...]]:
        """Names of ``kind`` contributed by more than one plugin, with those plugins."""
        found = self._by_name(kind)
        return {
            name: tuple(spec.plugin for spec in specs)
            for name, specs in sorted(found.items())
            if len(specs) > 1
        }

    def failed_specs(self, kind: str) -> dict[str, FactoryImportError]:
        """Specs of ``kind`` whose lazy factory cannot be resolved, with the error."""
        if kind not in SPEC_KINDS:
            raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(SPEC_KINDS)}")
        failed: dict[str, FactoryImportError] = {}
        for errors in self._failed.values():
            failed.update(errors.get(kind, {}))
        return dict(sorted(failed.items()))

    def get(self, kind: str, name: str) -> Spec:
        """The spec of ``kind`` called ``name``.

        Raises:
            PluginConflictError: two plugins contribute ``name``.
            FactoryImportError: ``name``'s factory cannot be resolved.
            UnavailableNameError: ``name`` is provided by a disabled or broken plugin.
            UnknownNameError: no plugin provides ``name``.
        """
        found = self._by_name(kind)
        specs = found.get(name, []) if isinstance(name, str) else []
        if len(specs) == 1:
            return specs[0]
        if specs:
            raise self._conflict(kind, name, [spec.plugin for spec in specs])
        failed = self.failed_specs(kind)
        if isinstance(name, str) and name in failed:
            raise failed[name]
        available = [n for n, specs in found.items() if len(specs) == 1]
        raise self._unknown(kind, name, available)

    def _unknown(self, kind: str, name: Any, available: list[str]) -> UnknownNameError:
        label = SPEC_KINDS[kind].kind
        not_loaded: list[str] = []
        for info in self._infos.values():
            if info.status == "loaded":
                continue
            reason = _NOT_LOADED_REASONS.get(info.disabled_by) or f"failed to load ({info.error})"
            declared = declared_names(info.module) if info.module else None
            if declared is not None and declared.provides(kind, str(name)):
                return UnavailableNameError(label, name, available, plugin=info.name, reason=reason)
            if declared is None or not declared.complete:
                not_loaded.append(f"plugin {info.name!r}, which {reason}")
        return UnknownNameError(label, name, available, not_loaded=not_loaded)

    def _conflict(self, kind: str, name: str, plugins: list[str]) -> PluginConflictError:
        return PluginConflictError.for_name(
            SPEC_KINDS[kind].kind, name, plugins, kinds=kind, variable=DISABLE_VARIABLE
        )


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
