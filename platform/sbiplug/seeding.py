"""One call to seed every random number generator sbi and sbiplug draw from.

sbi samples from torch's global generator, but its vectorised slice sampler (NLE/NRE posteriors)
draws from NumPy's global state, so reproducibility needs both.
"""

from __future__ import annotations

import random

import numpy as np
import torch

__all__ = ["seed_all"]


def seed_all(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators with ``seed``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
