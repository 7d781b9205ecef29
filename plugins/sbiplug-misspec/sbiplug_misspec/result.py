"""The outcome of a misspecification test: decision, per-block evidence, message and plot."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from torch import Tensor

from sbiplug_misspec.explain import BlockResult, plot_projection

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["MisspecificationTest"]


@dataclass
class MisspecificationTest:
    """Outcome of :func:`misspecification_test`.

    Arguments:
        statistic: With one block (``data_features=None``), the root MMD between observed and
            reference summaries; with several, −log of the smallest block p-value (ties
            broken by the others), which the same simulated null calibrates.
        p_value: (1 + #{null >= statistic}) / (1 + num_null).
        critical_value: Reject exactly when ``statistic > critical_value``.
        rejected: Whether H0 (the model produced the observations) is rejected at ``alpha``.
        null_statistics: The simulated null, shape ``(num_null,)``.
        alpha: The test's level.
        num_observed: N, the number of observed data sets.
        attrs: ``num_reference``, ``num_null``, ``kernel``, the kernel's ``scales``, ``blocks``.
        blocks: Per block (``"summary"``, ``"data"``, ``"residual"``): its statistic, p-value,
            the features' contributions and shifts (:class:`~sbiplug_misspec.explain.BlockResult`).
        message: What was found and what it likely means, in words.
    """

    statistic: float
    p_value: float
    critical_value: float
    rejected: bool
    null_statistics: Tensor
    alpha: float
    num_observed: int
    attrs: dict[str, Any] = field(default_factory=dict)
    blocks: list[BlockResult] = field(default_factory=list)
    message: str = ""

    def block(self, name: str) -> BlockResult:
        """The block called ``name`` (``"summary"``, ``"data"`` or ``"residual"``)."""
        for block in self.blocks:
            if block.name == name:
                return block
        raise KeyError(f"no block {name!r}; blocks: {[b.name for b in self.blocks]}")

    def plot(self, ax: Axes | None = None, block: str | None = None) -> Figure:
        """Observed against reference points in 2-D, for ``block`` (default: most significant)."""
        if not self.blocks:
            raise ValueError("this result carries no blocks to plot")
        chosen = min(self.blocks, key=lambda b: b.p_value) if block is None else self.block(block)
        return plot_projection(chosen, ax)

    def __repr__(self) -> str:
        blocks = ", ".join(f"{b.name}: p={b.p_value:.3g}" for b in self.blocks)
        return (
            f"MisspecificationTest(statistic={self.statistic:.4g}, p_value={self.p_value:.4g}, "
            f"critical_value={self.critical_value:.4g}, rejected={self.rejected}, "
            f"alpha={self.alpha}, num_observed={self.num_observed}, "
            f"num_null={len(self.null_statistics)}, "
            f"num_reference={self.attrs.get('num_reference')}, "
            f"kernel={self.attrs.get('kernel')!r}, blocks=[{blocks}])"
        )
