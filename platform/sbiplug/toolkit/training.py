"""Trainer defaults shared by every estimator: device, progress bars and metric tracking.

sbi writes TensorBoard logs to ``./sbi-logs`` when a trainer is given no tracker; sbiplug
trainers record nothing unless given ``log_dir=`` (TensorBoard there) or a ``tracker=``.
Progress bars are on by default, as in sbi; a Study switches them with its own setting.
"""

from __future__ import annotations

from typing import Any

from sbiplug.toolkit.validation import OptionError

__all__ = [
    "DEFAULT_DEVICE",
    "DEFAULT_SHOW_PROGRESS_BARS",
    "NullTracker",
    "default_tracker",
    "trainer_options",
]

DEFAULT_DEVICE = "cpu"
DEFAULT_SHOW_PROGRESS_BARS = True


class NullTracker:
    """sbi ``Tracker`` protocol implementation that discards every metric."""

    @property
    def log_dir(self) -> str | None:
        return None

    def log_metric(self, name: str, value: float, step: int | None = None) -> None:
        pass

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        pass

    def log_params(self, params: dict[str, Any]) -> None:
        pass

    def add_figure(self, name: str, figure: Any, step: int | None = None) -> None:
        pass

    def flush(self) -> None:
        pass


def default_tracker(log_dir: str | None = None) -> Any:
    """A TensorBoard tracker writing to ``log_dir`` when given, else a :class:`NullTracker`."""
    if log_dir is None:
        return NullTracker()
    from sbi.utils.tracking import TensorBoardTracker
    from torch.utils.tensorboard.writer import SummaryWriter

    return TensorBoardTracker(SummaryWriter(log_dir))


def trainer_options(
    *,
    device: str = DEFAULT_DEVICE,
    show_progress_bars: bool = DEFAULT_SHOW_PROGRESS_BARS,
    tracker: Any = None,
    log_dir: str | None = None,
) -> dict[str, Any]:
    """The keyword arguments every sbi trainer takes, with sbiplug's defaults.

    Arguments:
        device: Training device (``"cpu"``, ``"cuda"``, ...).
        show_progress_bars: Whether training shows progress bars.
        tracker: An sbi tracker; default :func:`default_tracker` of ``log_dir``.
        log_dir: Folder for TensorBoard logs; ``None`` records nothing.

    Returns:
        ``{"device": ..., "show_progress_bars": ..., "tracker": ...}`` for an sbi trainer.
    """
    if tracker is not None and log_dir is not None:
        raise OptionError("pass either tracker= or log_dir=, not both")
    return {
        "device": device,
        "show_progress_bars": show_progress_bars,
        "tracker": tracker if tracker is not None else default_tracker(log_dir),
    }
