"""Options shared by the built-in sbi estimator factories."""

from __future__ import annotations

from typing import Any

from sbiplug.tracking import default_tracker

__all__ = ["drop_none", "trainer_options"]


def trainer_options(
    *,
    device: str,
    show_progress_bars: bool,
    tracker: Any,
    log_dir: str | None,
) -> dict[str, Any]:
    """Keyword arguments every sbi trainer takes.

    sbi writes TensorBoard logs to ``./sbi-logs`` when given no tracker; sbiplug trainers record
    nothing unless ``log_dir`` or a ``tracker`` is given.
    """
    if tracker is not None and log_dir is not None:
        raise ValueError("pass either tracker= or log_dir=, not both")
    return {
        "device": device,
        "show_progress_bars": show_progress_bars,
        "tracker": tracker if tracker is not None else default_tracker(log_dir),
    }


def drop_none(**options: Any) -> dict[str, Any]:
    """The options that were given (not ``None``), to pass through to an sbi net builder."""
    return {key: value for key, value in options.items() if value is not None}
