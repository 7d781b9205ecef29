"""Seeding every random number generator sbi and sbiplug draw from.

sbi samples from torch's global generator, but its vectorised slice sampler (NLE/NRE posteriors)
draws from NumPy's global state, so reproducibility needs both.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

__all__ = ["derive_seed", "seed_all", "seeded"]


def seed_all(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators with ``seed``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch's and NumPy's global generators inside the block; restore both afterwards."""
    numpy_state = np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        try:
            yield
        finally:
            np.random.set_state(numpy_state)


def derive_seed(seed: int, purpose: str) -> int:
    """An independent seed for one ``purpose`` (``"pairs"``, ``"posterior"``, ...).

    Seeding two random streams alike would correlate them: true parameters and posterior draws
    built from the same normal variates make even an exact posterior fail SBC.
    """
    sequence = np.random.SeedSequence([int(seed) % 2**63, zlib.crc32(purpose.encode())])
    return int(sequence.generate_state(1, dtype=np.uint32)[0])
