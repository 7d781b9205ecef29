"""Lazy exports: a package's public names, imported from their modules on first access.

A plugin's ``__init__.py`` (and the host's) lists its names in ``__all__`` and where each one
lives; nothing is imported until a name is used, so that loading the plugin's ``plugin.py``
(which imports the package) pulls in no torch::

    from sbiplug.toolkit import lazy_exports

    __all__ = ["CMPE", "CMPEPosterior"]
    __getattr__, __dir__ = lazy_exports(
        __name__, {"CMPE": ".trainer", "CMPEPosterior": ".posterior"}
    )
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, locations: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Module-level ``__getattr__`` and ``__dir__`` for names imported on first access.

    Arguments:
        package: The importing module's ``__name__``.
        locations: ``{name: module}``; a module starting with ``.`` is relative to
            ``package`` (``".trainer"`` is ``f"{package}.trainer"``).

    Returns:
        ``(__getattr__, __dir__)`` to assign at module level. ``__getattr__`` imports the
        name's module, caches the value in the package's namespace (later accesses are plain
        attribute lookups) and raises :class:`AttributeError` for unknown names. ``__dir__``
        lists ``__all__`` (or the package's public globals) and the lazy names.
    """
    table = {
        name: f"{package}{module}" if module.startswith(".") else module
        for name, module in locations.items()
    }

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        namespace = vars(sys.modules[package])
        public = namespace.get("__all__") or [n for n in namespace if not n.startswith("_")]
        return sorted(set(public) | set(table))

    return __getattr__, __dir__
