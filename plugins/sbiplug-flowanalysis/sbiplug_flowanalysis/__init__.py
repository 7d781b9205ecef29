"""sbiplug_flowanalysis: (the helper writes this docstring: method, paper, what it offers).

Importing this package is cheap: torch loads only when an attribute below is first used.
"""

from __future__ import annotations

from sbiplug.toolkit import lazy_exports

__all__: list[str] = []

__getattr__, __dir__ = lazy_exports(__name__, {})
