"""Collect one plugin's contributions: call its hooks, validate the specs, check lazy factories.

A hook that raises or yields something invalid fails the whole plugin (:class:`HookError`). A
spec whose lazy ``"module:attr"`` factory names a module that cannot be found fails that spec
only; the check finds the module without importing it, so collecting stays cheap and imports
no torch. The attribute is checked when the spec is built.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from sbiplug.errors import FactoryImportError
from sbiplug.hookspecs import CONTRIBUTION_HOOKS
from sbiplug.plugin_sources import missing_module
from sbiplug.specs import SPEC_KINDS, Spec

__all__ = ["Contributions", "Hook", "HookError", "collect", "unresolvable"]


@dataclass(frozen=True)
class Hook:
    """A plugin's implementation of one contribution hook."""

    name: str
    function: Callable[..., Any]


class HookError(Exception):
    """A plugin's hook raised or yielded something invalid; ``error`` is the cause."""

    def __init__(self, error: Exception, function: Callable[..., Any] | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.function = function


@dataclass
class Contributions:
    """What one plugin contributes, by kind (``"simulators"``, ...).

    ``specs`` are usable; ``unresolved`` maps a spec name to why its factory cannot be
    imported; ``hooks`` are the plugin's hook implementations.
    """

    specs: dict[str, list[Spec]] = field(default_factory=dict)
    unresolved: dict[str, dict[str, FactoryImportError]] = field(default_factory=dict)
    hooks: dict[str, Hook] = field(default_factory=dict)


def collect(manager: pluggy.PluginManager, plugin_name: str) -> Contributions:
    """Call ``plugin_name``'s contribution hooks and sort what they yield.

    Raises:
        HookError: a hook raised, yielded a non-spec or an invalid spec, or one name twice.
    """
    found = Contributions()
    for kind, hook_name in CONTRIBUTION_HOOKS.items():
        spec_type = SPEC_KINDS[kind]
        caller: pluggy.HookCaller = getattr(manager.hook, hook_name)
        for impl in caller.get_hookimpls():
            if impl.plugin_name != plugin_name:
                continue
            found.hooks[kind] = Hook(hook_name, impl.function)
            try:
                produced = list(impl.function() or ())
                for spec in produced:
                    if not isinstance(spec, spec_type):
                        raise TypeError(
                            f"{hook_name} must yield {spec_type.__name__} objects, "
                            f"got {type(spec).__name__}"
                        )
                    spec.__post_init__()  # re-validate: specs may have been mutated
            except Exception as error:
                raise HookError(error, impl.function) from error
            names = [spec.name for spec in produced]
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                error = ValueError(f"{hook_name} yielded the name(s) {duplicates} twice")
                raise HookError(error, impl.function)
            for spec in produced:
                spec = dataclasses.replace(spec, plugin=plugin_name)
                problem = unresolvable(spec)
                if problem is None:
                    found.specs.setdefault(kind, []).append(spec)
                else:
                    found.unresolved.setdefault(kind, {})[spec.name] = problem
    return found


def unresolvable(spec: Spec) -> FactoryImportError | None:
    """The error of ``spec``'s lazy factory when its module cannot be found (nothing imported)."""
    if not isinstance(spec.factory, str):
        return None
    missing = missing_module(spec.factory.partition(":")[0])
    if missing is None:
        return None
    return FactoryImportError(
        spec.kind,
        spec.name,
        spec.plugin,
        spec.factory,
        f"no module named {missing!r}",
        missing=missing,
    )
