"""Exceptions and warnings that sbiplug raises for users and plugin authors."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "FactoryImportError",
    "PluginConflictError",
    "SbiplugPluginWarning",
    "UnavailableNameError",
    "UnknownNameError",
    "UserError",
]


class UnknownNameError(KeyError):
    """A simulator, estimator, diagnostic or target name that no plugin provides.

    The message lists the available names and the closest match, and the plugins that are not
    loaded (disabled or broken) and might provide the name.
    """

    def __init__(
        self, kind: str, name: str, available: Iterable[str], *, not_loaded: Iterable[str] = ()
    ) -> None:
        self.kind = kind
        self.name = name
        self.available = sorted(available)
        close = difflib.get_close_matches(str(name), self.available, n=1, cutoff=0.5)
        message = f"unknown {kind} {name!r}"
        if close:
            message += f"; did you mean {close[0]!r}?"
        listing = ", ".join(self.available) if self.available else "none"
        message += f" Available {kind}s: {listing}."
        not_loaded = list(not_loaded)
        if not_loaded:
            message += f" Not loaded, and may provide it: {'; '.join(not_loaded)}."
        self.closest = close[0] if close else None
        self.message = message
        super().__init__(message)

    def __str__(self) -> str:  # KeyError would show the repr of the message
        return self.message


class UnavailableNameError(UnknownNameError):
    """A name whose plugin is not loaded: disabled by the environment, or failed to load.

    ``plugin`` names that plugin and ``reason`` says why it is not loaded.
    """

    def __init__(
        self, kind: str, name: str, available: Iterable[str], *, plugin: str, reason: str
    ) -> None:
        super().__init__(kind, name, available)
        self.plugin = plugin
        self.reason = reason
        self.message = f"{kind} {name!r} is provided by plugin {plugin!r}, which {reason}"
        self.args = (self.message,)


class PluginConflictError(RuntimeError):
    """Two plugins with one name, or one name contributed by two plugins.

    For a name, ``kind``, ``name`` and ``plugins`` (every contributor) are set; the name is
    disabled while the other names keep working.
    """

    def __init__(
        self, message: str, *, kind: str = "", name: str = "", plugins: Iterable[str] = ()
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.name = name
        self.plugins = tuple(plugins)

    @classmethod
    def for_name(
        cls, kind: str, name: str, plugins: Iterable[str], *, kinds: str, variable: str
    ) -> PluginConflictError:
        """The error for ``name`` of ``kind`` contributed by every one of ``plugins``.

        ``kinds`` is the plural shown in the message; ``variable`` the one that disables a
        plugin (``SBIPLUG_DISABLE_PLUGINS``).
        """
        plugins = list(plugins)
        quoted = [repr(plugin) for plugin in plugins]
        if len(quoted) == 2:
            who = f"both plugin {quoted[0]} and plugin {quoted[1]}"
        else:
            who = f"plugins {', '.join(quoted[:-1])} and {quoted[-1]}"
        message = (
            f"{kind} {name!r} is contributed by {who}, so it is disabled (the other {kinds} are "
            f"not affected); uninstall one or set {variable}={plugins[-1]}"
        )
        return cls(message, kind=kind, name=name, plugins=plugins)


class FactoryImportError(ImportError):
    """A spec's lazy ``"module:attr"`` factory cannot be imported.

    The message names the spec, its plugin, the reference and what is missing; ``name`` is the
    missing module when a module is missing (as for :class:`ModuleNotFoundError`).
    """

    def __init__(
        self,
        kind: str,
        spec: str,
        plugin: str,
        reference: str,
        reason: str,
        *,
        missing: str | None = None,
    ) -> None:
        self.kind = kind
        self.spec = spec
        self.plugin = plugin
        self.reference = reference
        self.reason = reason
        super().__init__(
            f"{kind} {spec!r} of plugin {plugin!r} is unavailable: its factory {reference!r} "
            f"cannot be imported ({reason})",
            name=missing,
        )


class SbiplugPluginWarning(UserWarning):
    """A plugin failed to load or contributed something invalid and was skipped."""


class UserError(Exception):
    """An error in what the user asked for (a bad study file, option or folder).

    The ``sbiplug`` command prints it as one line, without a traceback, and exits with status 2.
    """
