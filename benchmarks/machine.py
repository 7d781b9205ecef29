"""What every benchmark reports about the machine and how it trains its sbi baselines quietly."""

from __future__ import annotations

import contextlib
import io
import os
import time
import warnings
from typing import Any

__all__ = ["load_average", "train_quietly"]


def load_average() -> str:
    """The 1-, 5- and 15-minute load averages, e.g. ``"2.10 1.85 1.60"``."""
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def train_quietly(trainer: Any, theta: Any, x: Any, **options: Any) -> tuple[Any, float]:
    """``trainer.append_simulations(theta, x).train(**options)`` with sbi's stdout and warnings
    silenced; returns the built posterior and the training wall time in seconds."""
    start = time.perf_counter()
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        trainer.append_simulations(theta, x).train(**options)
    return trainer.build_posterior(), time.perf_counter() - start
