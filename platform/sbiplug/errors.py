"""Exceptions and warnings that sbiplug raises for users and plugin authors."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "PluginConflictError",
    "SbiplugPluginWarning",
    "UnknownNameError",
]


class UnknownNameError(KeyError):
    """A simulator, estimator, diagnostic or target name that no plugin provides.

    The message lists the available names and the closest match.
    """

    def __init__(self, kind: str, name: str, available: Iterable[str]) -> None:
        self.kind = kind
        self.name = name
        self.available = sorted(available)
        close = difflib.get_close_matches(str(name), self.available, n=1, cutoff=0.5)
        message = f"unknown {kind} {name!r}"
        if close:
            message += f"; did you mean {close[0]!r}?"
        listing = ", ".join(self.available) if self.available else "none"
        message += f" Available {kind}s: {listing}."
        self.closest = close[0] if close else None
        self.message = message
        super().__init__(message)

    def __str__(self) -> str:  # KeyError would show the repr of the message
        return self.message


class PluginConflictError(RuntimeError):
    """Two plugins contribute the same name for the same kind of thing."""


class SbiplugPluginWarning(UserWarning):
    """A plugin failed to load or contributed something invalid and was skipped."""
