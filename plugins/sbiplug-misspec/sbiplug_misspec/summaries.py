"""Summaries in eval mode, and the kernel blocks of the root-MMD statistic (float64)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from sbiplug_misspec.regularizer import KERNEL_SCALES, KernelName, kernel_from_distances

__all__ = ["resolve_estimator", "resolve_summary", "root_mmd", "self_kernel", "summarise"]

# Rows of a cross-kernel block computed at once: bounds memory at ~2e7 float64 entries.
_BLOCK_ENTRIES = 20_000_000
_SUMMARY_CHUNK = 4096


def _is_identity(module: nn.Module) -> bool:
    """Whether ``module`` only standardises or passes x through (no learned summary)."""
    if isinstance(module, nn.Identity):
        return True
    if isinstance(module, nn.Sequential):
        return all(_is_identity(m) or type(m).__name__ == "Standardize" for m in module)
    return False


def resolve_summary(summary: Any) -> Callable[[Tensor], Tensor]:
    """The summary function behind a trainer, a posterior, a network or a callable.

    Raises:
        ValueError: for a trainer or posterior without a (non-identity) embedding net.
        RuntimeError: for a trainer that has not been trained.
        TypeError: for anything else that is not callable.
    """
    from sbiplug.sbi_internals import is_trainer, trained_network  # imports sbi: only here

    net = None
    if is_trainer(summary):
        net = trained_network(summary)
        if net is None:
            raise RuntimeError(
                f"summary: the {type(summary).__name__} trainer has not been trained yet"
            )
    elif hasattr(summary, "posterior_estimator"):  # sbi posterior
        net = summary.posterior_estimator
    if net is not None:
        embedding = getattr(net, "embedding_net", None)
        if embedding is None or _is_identity(embedding):
            raise ValueError(
                f"summary: {type(summary).__name__} has no embedding (summary) net, so there is "
                "no summary space to test in; train with an embedding net (e.g. estimator "
                "'npe_mmd') or pass a callable x -> summaries"
            )
        return embedding
    if callable(summary):
        return summary
    raise TypeError(
        "summary must be a trained sbi trainer or posterior with an embedding net, or a "
        f"callable x -> summaries; got {type(summary).__name__}"
    )


def resolve_estimator(summary: Any) -> Any:
    """The trained conditional density estimator q(θ | x) behind a trainer or posterior, or None.

    Used by the residual block; a plain callable summary has none.
    """
    from sbiplug.sbi_internals import is_trainer, trained_network  # imports sbi: only here

    if is_trainer(summary):
        return trained_network(summary)
    estimator = getattr(summary, "posterior_estimator", None)
    return estimator if hasattr(estimator, "sample") else None


def summarise(summary: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """Summaries of ``x`` in eval mode, without gradients, as float64 ``(n, S)``."""
    modules = [summary] if isinstance(summary, nn.Module) else []
    modes = [m.training for m in modules]
    for module in modules:
        module.eval()  # dropout off: reference, null and observed alike
    try:
        with torch.no_grad():
            parts = [summary(chunk) for chunk in torch.split(x, _SUMMARY_CHUNK)]
    finally:
        for module, mode in zip(modules, modes):
            module.train(mode)
    summaries = torch.cat(parts).to(torch.float64)
    return summaries.reshape(len(x), -1)


def cross_kernel(
    groups: Tensor, reference: Tensor, kernel: KernelName, scales: tuple[float, ...]
) -> Tensor:
    """Mean kernel value between each group and the reference set.

    Arguments:
        groups: Shape ``(G, N, S)``.
        reference: Shape ``(M, S)``.

    Returns:
        Shape ``(G,)``.
    """
    num_groups, size, dim = groups.shape
    rows = groups.reshape(-1, dim)
    reference_norm = reference.square().sum(-1)
    step = max(size, (_BLOCK_ENTRIES // max(len(reference), 1)) // size * size)
    sums = []
    for block in torch.split(rows, step):
        distances = (
            block.square().sum(-1, keepdim=True) + reference_norm - 2.0 * block @ reference.T
        ).clamp_min(0.0)
        sums.append(kernel_from_distances(distances, kernel, scales).sum(-1))
    return torch.cat(sums).reshape(num_groups, size).mean(-1) / len(reference)


def self_kernel(groups: Tensor, kernel: KernelName, scales: tuple[float, ...]) -> Tensor:
    """Mean kernel value within each group, diagonal included: shape ``(G,)`` from ``(G, N, S)``."""
    norms = groups.square().sum(-1)
    distances = (
        norms[:, :, None] + norms[:, None, :] - 2.0 * groups @ groups.transpose(1, 2)
    ).clamp_min(0.0)
    return kernel_from_distances(distances, kernel, scales).mean(dim=(1, 2))


def root_mmd(
    groups: Tensor, reference: Tensor, reference_term: Tensor, kernel: KernelName
) -> Tensor:
    """Root biased MMD between each group ``(G, N, S)`` and the reference ``(M, S)``."""
    squared = (
        reference_term
        + self_kernel(groups, kernel, KERNEL_SCALES)
        - 2.0 * cross_kernel(groups, reference, kernel, KERNEL_SCALES)
    )
    return squared.clamp_min(0.0).sqrt()
