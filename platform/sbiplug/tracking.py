"""A tracker that records nothing, so sbi trainers do not write ``./sbi-logs`` uninvited."""

from __future__ import annotations

from typing import Any

__all__ = ["NullTracker", "default_tracker"]


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
