"""The training schedule of CMPE at its defaults: length, learning rate and batches.

Consistency training (iCT, Song & Dhariwal, arXiv 2310.14189) fixes its length K in optimiser
steps before it starts, because the discretisation curriculum N(k) and the cosine learning rate
are functions of k / K. CMPE therefore never stops early: a network from before the end of the
curriculum has only been trained on coarse grids. When no length is given, for n training
simulations

    K(n) = 20 n                      for n <= 1000 (at least 1000 steps),
    K(n) = round(2000 sqrt(n / 10))  above,

which is continuous at n = 1000: 2k steps at 100 simulations, 20k at 1k, 63k at 10k, 200k at
100k. Below 1k simulations the length is capped at about 2,500 passes over the data because
longer schedules overfit there (C2ST 0.79 after 6k steps on 100 gaussian_linear simulations,
0.61 after 2k). A step costs the same at every n (batch 128, width 64): about 3-4 ms on one
quiet CPU thread, so training takes about 75 s at 1k simulations and 4 minutes at 10k.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset, default_collate

__all__ = ["cosine_learning_rate", "default_num_steps", "endless_batches"]


def default_num_steps(num_simulations: int) -> int:
    """Default training length K in optimiser steps for ``num_simulations`` training rows."""
    n = max(num_simulations, 0)
    return max(20 * n if n <= 1000 else round(2000 * math.sqrt(n / 10)), 1000)


def cosine_learning_rate(initial: float, step: int, total_steps: int) -> float:
    """Cosine decay from ``initial`` at step 0 towards 0 at ``total_steps`` (0 from then on)."""
    progress = min(step / max(total_steps, 1), 1.0)
    return 0.5 * initial * (1.0 + math.cos(math.pi * progress))


def endless_batches(loader: DataLoader, device: torch.device | str) -> Iterator[list[Tensor]]:
    """Training batches ``[theta (B, D), x (B, ...)]`` on ``device``, pass after pass.

    For sbi's own loaders (a ``TensorDataset`` of the simulations, a subset sampler and the
    default collation) the training rows are moved to ``device`` once and each pass is one
    random permutation sliced into batches (``drop_last`` as sbi), which skips the data
    loader's per-row collation; any other loader is iterated as it is.
    """
    dataset, indices = loader.dataset, getattr(loader.sampler, "indices", None)
    fast = (
        isinstance(dataset, TensorDataset)
        and indices is not None
        and loader.collate_fn is default_collate
        and loader.batch_size is not None
    )
    if not fast:
        while True:
            for batch in loader:
                yield [tensor.to(device) for tensor in batch[:2]]
    rows = torch.as_tensor(list(indices), dtype=torch.long)
    theta, x = (tensor[rows].to(device) for tensor in dataset.tensors[:2])
    size, count = int(loader.batch_size), len(rows)
    while True:
        order = torch.randperm(count, device=device)
        for start in range(0, count - size + 1, size):
            batch = order[start : start + size]
            yield [theta[batch], x[batch]]
