"""The training schedule of CMPE at its defaults: length, batch size, learning rate, batches.

Consistency training (iCT, Song & Dhariwal, arXiv 2310.14189) fixes its length K in optimiser
steps before it starts, because the discretisation curriculum N(k) and the cosine learning rate
are functions of k / K. CMPE therefore never stops early: a network from before the end of the
curriculum has only been trained on coarse grids.

When nothing is given, the schedule follows the number n of training simulations. The number of
training rows it processes is

    R(n) = 128 * 20 n                      for n <= 1000 (at least 128,000 rows),
    R(n) = 128 * 2000 sqrt(n / 10)         above,

continuous at n = 1000 (2.6 million rows, about 2,500 passes over the data; below 1k the number
of passes is capped there because longer schedules overfit). The batch size B(n) is the power of
two nearest n / 20, between 128 and 512, and K = R(n) / B(n) steps: 1,960 steps of 128 at 100
simulations, 19,600 of 128 at 1k, 15,650 of 512 at 10k, 50,000 of 512 at 100k. A step of 512 rows
costs about 1.5 steps of 128 (a small network's step is dominated by per-operation overhead), so
large budgets train about 2.5x faster than at a fixed batch of 128 for the same rows. The
learning rate is 1e-3 sqrt(B / 128) (2e-3 at 512), decayed by a cosine over K.

Cost on one CPU thread (width 64): about 3.5 ms per step of 128 and 5.5 ms per step of 512, so
about 10 s at 100 simulations, 70 s at 1k, 90 s at 10k and 5 minutes at 100k.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset, default_collate

__all__ = [
    "cosine_learning_rate",
    "default_batch_size",
    "default_learning_rate",
    "default_num_steps",
    "endless_batches",
]


def _training_rows(num_simulations: int) -> float:
    """R(n): training rows the default schedule processes for n training simulations."""
    n = max(num_simulations, 0)
    steps_of_128 = 20 * n if n <= 1000 else 2000 * math.sqrt(n / 10)
    return 128 * max(steps_of_128, 1000)


def default_batch_size(num_simulations: int) -> int:
    """B(n): the power of two nearest n / 20, clipped to [128, 512]."""
    exponent = round(math.log2(max(num_simulations, 1) / 20))
    return int(min(max(2**exponent, 128), 512))


def default_num_steps(num_simulations: int, batch_size: int | None = None) -> int:
    """Default training length K in optimiser steps for ``num_simulations`` training rows.

    Arguments:
        num_simulations: Number of training simulations n.
        batch_size: Batch size of the steps; default :func:`default_batch_size` of n. The length
            keeps the number of rows processed, R(n), fixed.
    """
    batch = default_batch_size(num_simulations) if batch_size is None else batch_size
    return max(round(_training_rows(num_simulations) / batch), 1)


def default_learning_rate(batch_size: int) -> float:
    """Initial learning rate for a batch size: 1e-3 sqrt(B / 128)."""
    return 1e-3 * math.sqrt(batch_size / 128)


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
