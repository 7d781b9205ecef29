"""Why a misspecification test rejects: per-feature contributions, a message and a 2-D plot.

For each block of the test (learned summaries, data features), the contribution of feature j
is the drop in the block's MMD² when feature j is left out (clamped at 0, as shares of their
sum), computed against up to ``EXPLAIN_REFERENCE`` reference points. Next to it, each
feature's *shift*: the observed mean minus the reference mean, in reference sds. The message
names the block with the strongest evidence, its leading features and what that kind of
feature usually means. :func:`plot_projection` draws the observed points against the reference
cloud in the plane of the mean shift and the reference's widest orthogonal direction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from sbiplug.toolkit import figure_and_axes
from sbiplug_misspec.regularizer import KERNEL_SCALES, KernelName, mmd_squared

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "EXPLAIN_REFERENCE",
    "HINTS",
    "BlockResult",
    "explain_block",
    "message",
    "plot_projection",
]

EXPLAIN_REFERENCE = 500
HINTS: dict[str, str] = {
    "summary": "the data's learned summaries lie outside what the simulator produces: parameters "
    "outside the prior's typical range, or a forward model that behaves differently (check "
    "the prior and the simulator's systematic behaviour)",
    "scale": "the noise level differs from the simulator's (check the noise model's scale)",
    "skew": "the noise is asymmetric unlike the simulator's (check the noise distribution)",
    "tails": "heavier or lighter tails, or outliers, compared with the simulator's noise "
    "(consider a heavy-tailed or contamination noise model, or look for gross errors)",
    "dependence": "observations depend on each other or drift, unlike the simulator's "
    "independent draws (check for autocorrelation, trends or correlated coordinates)",
    "bias": "the data sit systematically above or below what the fitted model predicts for "
    "them (check the forward model's systematic behaviour, offsets or a missing term)",
    "value": "the data at these positions differ from anything the simulator produces "
    "(check the observation process there: offsets, scaling, censoring, noise)",
}


@dataclass
class BlockResult:
    """One block of the test: statistic, own p-value and the features behind it.

    Arguments:
        name: ``"summary"`` (the learned summaries), ``"data"`` (fixed data features) or
            ``"residual"`` (plug-in residual features of vectors).
        statistic: Root MMD between the N observed and the reference points of this block.
        p_value: This block's p-value alone against the same simulated null.
        feature_names: One label per feature, ``(F,)``.
        feature_kinds: What each feature measures (keys of :data:`HINTS`), ``(F,)``.
        contributions: Share of the MMD² each feature carries, ``(F,)``, summing to 1 (or 0).
        shifts: Observed mean minus reference mean, in reference sds, ``(F,)``.
        observed: The observed points, standardised as the test sees them, ``(N, F)``.
        reference: The reference points, ``(M, F)``.
    """

    name: str
    statistic: float
    p_value: float
    feature_names: list[str]
    feature_kinds: list[str]
    contributions: Tensor
    shifts: Tensor
    observed: Tensor
    reference: Tensor

    def top(self, count: int = 3) -> list[tuple[str, float, float]]:
        """The ``count`` leading features as ``(name, share, shift)``."""
        order = torch.argsort(self.contributions, descending=True)[:count]
        return [
            (self.feature_names[i], float(self.contributions[i]), float(self.shifts[i]))
            for i in order.tolist()
            if float(self.contributions[i]) > 0
        ]


def explain_block(
    name: str,
    statistic: float,
    p_value: float,
    observed: Tensor,
    reference: Tensor,
    feature_names: list[str],
    feature_kinds: list[str],
    kernel: KernelName,
) -> BlockResult:
    """Contributions and shifts of one block (``observed (N, F)``, ``reference (M, F)``)."""
    subset = reference[:EXPLAIN_REFERENCE]
    full = mmd_squared(observed, subset, kernel, KERNEL_SCALES)
    drops = []
    for j in range(observed.shape[1]):
        keep = [i for i in range(observed.shape[1]) if i != j]
        without = mmd_squared(observed[:, keep], subset[:, keep], kernel, KERNEL_SCALES)
        drops.append(float((full - without).clamp_min(0.0)))
    contributions = torch.tensor(drops, dtype=torch.float64)
    if contributions.sum() > 0:
        contributions = contributions / contributions.sum()
    spread = reference.std(dim=0).clamp_min(1e-12)
    shifts = (observed.mean(dim=0) - reference.mean(dim=0)) / spread
    return BlockResult(
        name, statistic, p_value, list(feature_names), list(feature_kinds), contributions,
        shifts, observed, reference,
    )  # fmt: skip


def message(
    rejected: bool, p_value: float, alpha: float, num_observed: int, blocks: list[BlockResult]
) -> str:
    """A plain-language account of the decision that names what drives it."""
    sets = f"{num_observed} observed data set{'s' if num_observed != 1 else ''}"
    per_block = ", ".join(f"{b.name} p = {b.p_value:.3g}" for b in blocks)
    if not rejected:
        return (
            f"model not rejected for {sets} (p = {p_value:.3g} > alpha = {alpha}; {per_block}): "
            "the data look like the simulator's in everything this test measures; that is no "
            "proof that the model is right (see what the test cannot see in the README)"
        )
    strongest = min(blocks, key=lambda b: b.p_value)
    leading = strongest.top(3)
    described = "; ".join(
        f"{name} (shift {shift:+.1f} reference sds, {share:.0%} of the discrepancy)"
        for name, share, shift in leading
    )
    kind = "summary"
    if leading:
        kind = strongest.feature_kinds[strongest.feature_names.index(leading[0][0])]
    return (
        f"model rejected for {sets} (p = {p_value:.3g} <= alpha = {alpha}; {per_block}). "
        f"Strongest evidence in the {strongest.name} block: {described}. Likely cause: "
        f"{HINTS.get(kind, HINTS['summary'])}. Do not trust the posterior on these data."
    )


def _projection(observed: Tensor, reference: Tensor) -> tuple[Tensor, Tensor]:
    """Two orthonormal directions: the mean shift and the reference's widest other one."""
    centred = reference - reference.mean(dim=0)
    shift = observed.mean(dim=0) - reference.mean(dim=0)
    _, _, components = torch.linalg.svd(centred, full_matrices=False)
    first = shift / shift.norm() if shift.norm() > 1e-12 else components[0]
    residual = centred - (centred @ first)[:, None] * first
    _, _, others = torch.linalg.svd(residual, full_matrices=False)
    second = others[0] - (others[0] @ first) * first
    return first, second / second.norm().clamp_min(1e-12)


def _label(direction: Tensor, names: list[str]) -> str:
    order = torch.argsort(direction.abs(), descending=True)[:2].tolist()
    return " ".join(f"{float(direction[i]):+.2f}·{names[i]}" for i in order)


def plot_projection(block: BlockResult, ax: Axes | None = None) -> Figure:
    """The observed points against the reference cloud of ``block``, projected to 2-D."""
    figure, ax = figure_and_axes(ax, figsize=(5, 4))
    if block.observed.shape[1] == 1:
        first = torch.ones(1, dtype=block.observed.dtype)
        second = torch.zeros(1, dtype=block.observed.dtype)
    else:
        first, second = _projection(block.observed, block.reference)
    centre = block.reference.mean(dim=0)
    ref = (block.reference - centre) @ torch.stack([first, second], dim=1)
    obs = (block.observed - centre) @ torch.stack([first, second], dim=1)
    ax.scatter(ref[:, 0], ref[:, 1], s=6, color="0.6", alpha=0.5, label="reference (simulator)")
    ax.scatter(obs[:, 0], obs[:, 1], s=40, color="tab:red", marker="x", label="observed")
    ax.set_xlabel(f"mean shift: {_label(first, block.feature_names)}", fontsize="small")
    ax.set_ylabel(f"widest other: {_label(second, block.feature_names)}", fontsize="small")
    ax.set_title(f"{block.name} block: p = {block.p_value:.3g}")
    ax.legend(frameon=False, fontsize="small")
    return figure
