"""Kernel mixtures, the biased MMD² and the summary-space regulariser MMD²[h(x) ‖ N(0, I)].

The regulariser of Schmitt, Bürkner, Köthe & Radev, *Detecting Model Misspecification in
Amortized Bayesian Inference with Neural Networks* (GCPR 2023, arXiv 2112.08866; extended in
arXiv 2406.03154): train the summary (embedding) network h jointly with the inference network on

    L = E[-log q(θ | h(x))] + γ · MMD²[p(h(x)) ‖ N(0, I_S)],

estimated on each minibatch with the biased V-statistic against fresh standard-normal draws.
:class:`SummaryMMD` is that penalty as a plain callable ``summaries -> scalar``, so every
estimator that trains an embedding net (``npe_mmd`` here, CMPE's ``summary_loss`` option) uses
this one piece of code.

Kernels are mixtures over 19 fixed scales, as in the authors' code (no median heuristic)::

    s ∈ {1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1, 5, 10, 15, 20, 25, 30, 35, 100, 1e3, 1e4, 1e5, 1e6}
    inverse multiquadric (default):  k(x, y) = Σ_s s / (‖x − y‖² + s)
    Gaussian:                         k(x, y) = Σ_s exp(−‖x − y‖² / (2 s))

so k(x, x) = 19 for both.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal

import torch
from torch import Tensor

from sbiplug.toolkit import check_float

__all__ = [
    "KERNELS",
    "KERNEL_SCALES",
    "SummaryMMD",
    "gaussian_kernel",
    "imq_kernel",
    "kernel_from_distances",
    "mmd_squared",
    "squared_distances",
]

KERNEL_SCALES: tuple[float, ...] = (
    1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 35.0, 100.0,
    1e3, 1e4, 1e5, 1e6,
)  # fmt: skip

KernelName = Literal["imq", "gaussian"]
KERNELS: tuple[str, ...] = ("imq", "gaussian")


def _check_kernel(kernel: str) -> None:
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {', '.join(map(repr, KERNELS))}, got {kernel!r}")


def squared_distances(x: Tensor, y: Tensor) -> Tensor:
    """Pairwise squared Euclidean distances.

    Arguments:
        x: Points, shape ``(*, m, d)``.
        y: Points, shape ``(*, n, d)``.

    Returns:
        ``‖x_i − y_j‖²``, shape ``(*, m, n)``, clamped at 0.
    """
    # The expansion ‖x‖² + ‖y‖² − 2 xᵀy is differentiable at x = y, unlike cdist's square root.
    x_norm = x.square().sum(dim=-1, keepdim=True)
    y_norm = y.square().sum(dim=-1, keepdim=True).transpose(-1, -2)
    return (x_norm + y_norm - 2.0 * x @ y.transpose(-1, -2)).clamp_min(0.0)


def kernel_from_distances(
    distances: Tensor, kernel: KernelName = "imq", scales: tuple[float, ...] = KERNEL_SCALES
) -> Tensor:
    """The kernel mixture evaluated on squared distances.

    Arguments:
        distances: Squared distances, any shape.
        kernel: ``"imq"`` (inverse multiquadric) or ``"gaussian"``.
        scales: The mixture's scales.

    Returns:
        Kernel values, the shape of ``distances``.
    """
    _check_kernel(kernel)
    # A loop over scales keeps memory at one copy of ``distances`` (no scale axis).
    values = torch.zeros_like(distances)
    if not (distances.requires_grad and torch.is_grad_enabled()):
        # In place when no gradient is needed: the test statistic's large kernel blocks.
        term = torch.empty_like(distances)
        for scale in scales:
            if kernel == "imq":
                torch.add(distances, scale, out=term).reciprocal_().mul_(scale)
            else:
                torch.mul(distances, -0.5 / scale, out=term).exp_()
            values.add_(term)
        return values
    for scale in scales:
        if kernel == "imq":
            values = values + scale / (distances + scale)
        else:
            values = values + torch.exp(-distances / (2.0 * scale))
    return values


def imq_kernel(x: Tensor, y: Tensor, scales: tuple[float, ...] = KERNEL_SCALES) -> Tensor:
    """Inverse-multiquadric mixture ``Σ_s s / (‖x − y‖² + s)``, shape ``(*, m, n)``."""
    return kernel_from_distances(squared_distances(x, y), "imq", scales)


def gaussian_kernel(x: Tensor, y: Tensor, scales: tuple[float, ...] = KERNEL_SCALES) -> Tensor:
    """Gaussian mixture ``Σ_s exp(−‖x − y‖² / (2 s))``, shape ``(*, m, n)``."""
    return kernel_from_distances(squared_distances(x, y), "gaussian", scales)


def mmd_squared(
    x: Tensor, y: Tensor, kernel: KernelName = "imq", scales: tuple[float, ...] = KERNEL_SCALES
) -> Tensor:
    """Biased (V-statistic) MMD² between two samples, diagonal terms included.

    Arguments:
        x: First sample, shape ``(*, m, d)``.
        y: Second sample, shape ``(*, n, d)``.
        kernel: ``"imq"`` or ``"gaussian"``.
        scales: The mixture's scales.

    Returns:
        ``mean k(x, x') + mean k(y, y') − 2 mean k(x, y)``, shape ``(*)``, clamped at 0.
    """
    k_xx = kernel_from_distances(squared_distances(x, x), kernel, scales).mean(dim=(-2, -1))
    k_yy = kernel_from_distances(squared_distances(y, y), kernel, scales).mean(dim=(-2, -1))
    k_xy = kernel_from_distances(squared_distances(x, y), kernel, scales).mean(dim=(-2, -1))
    return (k_xx + k_yy - 2.0 * k_xy).clamp_min(0.0)


class SummaryMMD:
    """The summary-space penalty ``weight · MMD²[h(x) ‖ N(0, diag(σ²))]`` for one minibatch.

    Usable wherever an estimator accepts a ``summary_loss: Callable[[Tensor], Tensor]``: it
    maps the batch's summaries to a scalar to be added to the (mean) training loss. Each call
    draws fresh normal points, as many as there are summaries, from torch's global RNG.

    Arguments:
        weight: γ, the penalty's weight (1 in the paper and in BayesFlow).
        kernel: ``"imq"`` (default) or ``"gaussian"``, each a mixture over ``scales``.
        scales: Kernel scales; defaults to the paper's 19 (see the module docstring).
        target_scale: σ, the target's standard deviation: 1 (default, the paper's N(0, I)) or
            one value per summary dimension. A summary block with σ < 1 carries less weight in
            the isotropic-kernel test (see :class:`~sbiplug_misspec.networks.DeepSetEmbedding`).

    Example:
        >>> penalty = SummaryMMD(weight=1.0)
        >>> loss = nll.mean() + penalty(embedding_net(x))
    """

    def __init__(
        self,
        weight: float = 1.0,
        kernel: KernelName = "imq",
        scales: tuple[float, ...] = KERNEL_SCALES,
        target_scale: float | Sequence[float] = 1.0,
    ) -> None:
        _check_kernel(kernel)
        check_float("weight", weight, minimum=0.0, owner="SummaryMMD")
        if not scales or any(s <= 0 for s in scales):
            raise ValueError(f"SummaryMMD scales must be positive, got {scales!r}")
        target = (target_scale,) if isinstance(target_scale, int | float) else target_scale
        target = tuple(float(s) for s in target)
        if not target or not all(s > 0 and math.isfinite(s) for s in target):
            raise ValueError(
                f"SummaryMMD target_scale must be positive and finite, got {target_scale!r}"
            )
        self.weight = float(weight)
        self.kernel: KernelName = kernel
        self.scales = tuple(float(s) for s in scales)
        self.target_scale = target[0] if isinstance(target_scale, int | float) else target

    def __call__(self, summaries: Tensor) -> Tensor:
        """The weighted MMD² between ``summaries`` and as many fresh N(0, I) draws.

        Arguments:
            summaries: Summary vectors h(x), shape ``(batch, S)``.

        Returns:
            A scalar tensor, differentiable in ``summaries``.
        """
        if summaries.ndim != 2:
            raise ValueError(
                "SummaryMMD expects summaries of shape (batch, summary_dim), got "
                f"{tuple(summaries.shape)}; flatten the embedding net's output first"
            )
        if self.weight == 0.0:
            return summaries.new_zeros(())
        target = torch.randn_like(summaries)
        if isinstance(self.target_scale, tuple):
            if len(self.target_scale) != summaries.shape[1]:
                raise ValueError(
                    f"SummaryMMD target_scale has {len(self.target_scale)} values but the "
                    f"summaries have {summaries.shape[1]} dimensions"
                )
            target = target * summaries.new_tensor(self.target_scale)
        elif self.target_scale != 1.0:
            target = target * self.target_scale
        return self.weight * mmd_squared(summaries, target, self.kernel, self.scales)

    def __repr__(self) -> str:
        return (
            f"SummaryMMD(weight={self.weight}, kernel={self.kernel!r}, scales={len(self.scales)}, "
            f"target_scale={self.target_scale})"
        )


SummaryLoss = Callable[[Tensor], Tensor]
