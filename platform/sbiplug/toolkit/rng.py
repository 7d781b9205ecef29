"""Random number generators that never change the caller's global state.

sbi samples from torch's global generator, and its vectorised slice sampler (NLE/NRE
posteriors) from NumPy's, so a seeded computation must seed both; :func:`seeded` does so inside
a block and restores both afterwards. Simulators draw from an explicit NumPy
:class:`~numpy.random.Generator` (:func:`as_generator`). :func:`derive_seed` gives independent
seeds for the separate random streams of one seeded computation.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

__all__ = ["SeedLike", "as_generator", "derive_seed", "ensure_seed", "seed_all", "seeded"]

SeedLike = int | np.random.Generator | np.random.SeedSequence | None
"""What a ``seed=`` argument accepts: an int, a NumPy generator or seed sequence, or ``None``."""


def ensure_seed(seed: int | None) -> int:
    """``seed``, or when ``None`` a seed drawn from torch's global generator.

    Drawing from torch keeps ``torch.manual_seed`` in charge of unseeded calls, as in sbi.
    """
    if seed is None:
        return int(torch.randint(0, 2**62, (1,)).item())
    return int(seed)


def as_generator(seed: SeedLike) -> np.random.Generator:
    """A NumPy generator from ``seed`` (a generator is returned as is).

    ``None`` draws the seed with :func:`ensure_seed`, which advances torch's global generator
    (as every unseeded draw in sbi does) and nothing else.
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        seed = ensure_seed(None)
    return np.random.default_rng(seed)


def derive_seed(seed: int, purpose: str) -> int:
    """An independent seed for one ``purpose`` (``"pairs"``, ``"posterior"``, ...).

    Seeding two random streams alike would correlate them: true parameters and posterior draws
    built from the same normal variates make even an exact posterior fail SBC.

    Returns:
        A seed in ``[0, 2**32)``, a function of ``(seed, purpose)`` alone.
    """
    sequence = np.random.SeedSequence([int(seed) % 2**63, zlib.crc32(purpose.encode())])
    return int(sequence.generate_state(1, dtype=np.uint32)[0])


@contextmanager
def seeded(seed: int | None) -> Iterator[None]:
    """Run the block on forked torch and NumPy global generators, seeded with ``seed``.

    Both generators (and torch's CUDA generators, once CUDA is initialised) are restored on
    exit, also when the block raises: the caller's random stream continues as if the block had
    not run. ``None`` forks without reseeding, so the block draws what the caller would have
    drawn next, and the caller draws it again afterwards.
    """
    numpy_state = np.random.get_state()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices):
        try:
            if seed is not None:
                torch.manual_seed(seed)
                np.random.seed(seed % 2**32)
            yield
        finally:
            np.random.set_state(numpy_state)


def seed_all(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators with ``seed`` (for scripts).

    Library code uses :func:`seeded` instead, which leaves the caller's state alone.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
