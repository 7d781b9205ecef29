"""What only the built-in diagnostics share: sbi's budget warnings and the DKW band.

The generic diagnostic helpers (seeds, inputs, figures, results) are :mod:`sbiplug.toolkit`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["SBI_BUDGET_WARNINGS", "dkw_epsilon", "sbi_budget_warnings_silenced"]

SBI_BUDGET_WARNINGS = (
    ".*should be on the order of 100s.*",
    ".*less than 100 samples.*",
    ".*[Bb]atched sampling.*",
    ".*Capping max_sampling_batch_size.*",
    ".*unnormalized.*",
)
"""sbi's advice on budgets and sampling paths; a diagnostic's budget is the user's choice."""


@contextmanager
def sbi_budget_warnings_silenced() -> Iterator[None]:
    """Silence :data:`SBI_BUDGET_WARNINGS` inside the block (other warnings still show)."""
    with warnings.catch_warnings():
        for message in SBI_BUDGET_WARNINGS:
            warnings.filterwarnings("ignore", message=message)
        yield


def dkw_epsilon(num_values: int, alpha: float) -> float:
    """Half-width of the Dvoretzky-Kiefer-Wolfowitz simultaneous ``1 - alpha`` ECDF band."""
    return math.sqrt(math.log(2.0 / alpha) / (2.0 * num_values))
