"""Network options of the built-in sbi estimator factories."""

from __future__ import annotations

from typing import Any

__all__ = ["drop_none"]


def drop_none(**options: Any) -> dict[str, Any]:
    """The options that were given (not ``None``), to pass through to an sbi net builder."""
    return {key: value for key, value in options.items() if value is not None}
