"""Permutation-invariant set encoders over NaN-padded sets: DeepSets and the Set Transformer.

DeepSets (Zaheer et al., 2017): φ(S) = ρ([pool_k ψ(x_k), log n]) with mean or sum pooling and
the set size n as a feature. Set Transformer (Lee et al., 2019): induced set attention blocks
(ISAB) then pooling by multi-head attention (PMA), with the set size appended before ρ. Both
add a linear path L([mean_k x_k, log n]) to the summary, which carries the set mean and size
to the estimator at full precision. Both mask padded trials (:mod:`sbiplug_context.padding`), so
a set and the same set padded give the same summary, and both standardise their input
themselves (location and scale of the present elements of the first training batch, stored as
buffers): the estimator's own z-scoring must be off for padded data. Used as context encoders
in Müller et al. (arXiv 2312.10107).

Each encoder refuses, in one line, sets of the wrong element shape, empty sets and sizes
outside ``[min_trials, max_trials]``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from sbiplug.toolkit import check_positive_int
from sbiplug_context.padding import check_sets, set_mask

__all__ = ["POOLINGS", "DeepSetEncoder", "SetEncoder", "SetTransformerEncoder", "find_set_encoder"]

POOLINGS = ("mean", "sum")


def _mlp(width_in: int, hidden: int, layers: int, width_out: int) -> nn.Sequential:
    modules: list[nn.Module] = []
    width = width_in
    for _ in range(layers):
        modules += [nn.Linear(width, hidden), nn.GELU()]
        width = hidden
    modules.append(nn.Linear(width, width_out))
    return nn.Sequential(*modules)


class SetEncoder(nn.Module):
    """Base of the set encoders: input checks, masking and standardisation.

    Arguments:
        element_dim: Dimension d of one set element (trial).
        max_trials: The padded width: the largest set.
        min_trials: The smallest set accepted.
        output_dim: Dimension of the summary.
        subsample_trials: In training mode, the share of sets replaced by a random subset of
            their trials, of a size drawn log-uniformly in ``[min_trials, k]``: each simulation
            then also trains the smaller sizes. Valid for exchangeable trials whose smaller sets
            are subsets of larger ones (i.i.d. trials, shared random effects); ``0`` turns it off.
    """

    #: Marks a set encoder for the host (the ``set_encoder`` diagnostic requirement).
    sbiplug_set_encoder = True
    kind = "set"

    def __init__(
        self,
        element_dim: int,
        max_trials: int,
        min_trials: int,
        output_dim: int,
        subsample_trials: float = 0.5,
    ) -> None:
        super().__init__()
        owner = f"embedding net {self.kind!r}"
        numeric = isinstance(subsample_trials, (int, float)) and not isinstance(
            subsample_trials, bool
        )
        if not numeric or not 0.0 <= subsample_trials < 1.0:
            raise ValueError(
                f"{owner}: subsample_trials must be a probability in [0, 1), "
                f"got {subsample_trials!r}"
            )
        self.subsample_trials = float(subsample_trials)
        self.element_dim = check_positive_int("element_dim", element_dim, owner=owner)
        self.max_trials = check_positive_int("max_trials", max_trials, owner=owner)
        self.min_trials = check_positive_int("min_trials", min_trials, owner=owner)
        self.output_dim = check_positive_int("output_dim", output_dim, owner=owner)
        if self.min_trials > self.max_trials:
            raise ValueError(
                f"{owner}: min_trials ({min_trials}) must not exceed max_trials ({max_trials})"
            )
        self.linear_path = nn.Linear(element_dim + 1, output_dim)
        self.register_buffer("loc", torch.zeros(element_dim))
        self.register_buffer("scale", torch.ones(element_dim))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    def _inputs(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Checked, standardised, zero-filled sets ``(B, n, d)``, mask ``(B, n)``, sizes."""
        if x.ndim == 2 and x.shape[1] == self.max_trials * self.element_dim:
            x = x.reshape(len(x), self.max_trials, self.element_dim)
        sizes = check_sets(
            x,
            self.element_dim,
            min_trials=self.min_trials,
            max_trials=self.max_trials,
            owner=f"embedding net {self.kind!r}",
        )
        mask = set_mask(x)
        # sbi probes a new network with one set: fit on the first real batch instead
        if self.training and not bool(self.fitted) and len(x) >= 2:
            present = x[mask]
            self.loc.copy_(present.mean(dim=0))
            self.scale.copy_(present.std(dim=0).clamp_min(1e-6))
            self.fitted.fill_(True)
        if (
            self.training
            and self.subsample_trials > 0
            and self.min_trials < self.max_trials
            and torch.is_grad_enabled()
        ):
            mask = self._random_subsets(mask)
            sizes = mask.sum(dim=1)
        z = torch.where(mask.unsqueeze(-1), (x - self.loc) / self.scale, torch.zeros_like(x))
        return z, mask, sizes

    def _random_subsets(self, mask: Tensor) -> Tensor:
        """A mask ``(B, n)`` that keeps, in a ``subsample_trials`` share of the sets, a random
        subset of their trials, of a size drawn log-uniformly in ``[min_trials, k]``.

        A random subset of k exchangeable trials is a data set of the smaller size from the
        same θ, so every simulation also trains the smaller sizes, and validation (eval mode)
        still sees the sets as simulated.
        """
        sizes = mask.sum(dim=1).to(torch.float32)
        low = torch.full_like(sizes, float(self.min_trials)).minimum(sizes)
        u = torch.rand_like(sizes)
        drawn = torch.floor(torch.exp(torch.log(low) + u * torch.log((sizes + 1) / low)))
        chosen = torch.rand_like(sizes) < self.subsample_trials
        keep = torch.where(chosen, drawn.clamp(low, sizes), sizes)
        order = torch.rand(mask.shape, device=mask.device).masked_fill(~mask, 2.0)
        ranks = order.argsort(dim=1).argsort(dim=1)
        return mask & (ranks < keep.unsqueeze(-1))

    def size_feature(self, sizes: Tensor) -> Tensor:
        """log n scaled to about [0, 1] over the trained range: ``(B, 1)``."""
        return (torch.log(sizes.to(torch.float32)) / math.log(self.max_trials + 1)).unsqueeze(-1)

    def linear_summary(self, z: Tensor, sizes: Tensor) -> Tensor:
        """L([mean of the standardised elements, log n]): ``(B, output_dim)``.

        Arguments:
            z: Standardised, zero-filled sets, shape ``(B, n, d)``.
            sizes: Set sizes, shape ``(B,)``.
        """
        mean = z.sum(dim=1) / sizes.unsqueeze(-1).to(z.dtype)
        return self.linear_path(torch.cat([mean, self.size_feature(sizes)], dim=-1))


class DeepSetEncoder(SetEncoder):
    """DeepSets: ρ([pool_k ψ(x_k), log n]) + L([mean_k x_k, log n]), pooling over present elements.

    Arguments:
        element_dim, max_trials, min_trials, output_dim, subsample_trials: As for
            :class:`SetEncoder`.
        pooling: ``"mean"`` or ``"sum"`` (divided by ``max_trials`` to keep its scale).
        hidden_features: Width of ψ and ρ.
        num_layers: Hidden layers in each of ψ and ρ.
    """

    kind = "set_deepsets"

    def __init__(
        self,
        element_dim: int,
        max_trials: int,
        min_trials: int = 1,
        output_dim: int = 16,
        pooling: str = "mean",
        hidden_features: int = 64,
        num_layers: int = 2,
        subsample_trials: float = 0.5,
    ) -> None:
        super().__init__(element_dim, max_trials, min_trials, output_dim, subsample_trials)
        if pooling not in POOLINGS:
            raise ValueError(
                f"embedding net {self.kind!r}: pooling must be one of {POOLINGS}, got {pooling!r}"
            )
        self.pooling = pooling
        self.psi = _mlp(element_dim, hidden_features, num_layers, hidden_features)
        self.rho = _mlp(hidden_features + 1, hidden_features, num_layers, output_dim)

    def forward(self, x: Tensor) -> Tensor:
        """Summaries ``(B, output_dim)`` of padded sets ``(B, max_trials, element_dim)``."""
        z, mask, sizes = self._inputs(x)
        weights = mask.to(z.dtype).unsqueeze(-1)
        pooled = (self.psi(z) * weights).sum(dim=1)
        if self.pooling == "mean":
            pooled = pooled / sizes.unsqueeze(-1).to(z.dtype)
        else:
            pooled = pooled / self.max_trials
        summary = self.rho(torch.cat([pooled, self.size_feature(sizes)], dim=-1))
        return summary + self.linear_summary(z, sizes)


class _MAB(nn.Module):
    """Multi-head attention block: LN(H + FF(H)), H = LN(Q + Attn(Q, K, K))."""

    def __init__(self, width: int, num_heads: int) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(width, num_heads, batch_first=True)
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.ff = nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.Linear(width, width))

    def forward(self, q: Tensor, k: Tensor, key_mask: Tensor | None = None) -> Tensor:
        ignore = None if key_mask is None else ~key_mask
        h = self.norm1(q + self.attention(q, k, k, key_padding_mask=ignore, need_weights=False)[0])
        return self.norm2(h + self.ff(h))


class _ISAB(nn.Module):
    """Induced set attention: H = MAB(I, X), out = MAB(X, H), with m inducing points I."""

    def __init__(self, width: int, num_heads: int, num_inducing: int) -> None:
        super().__init__()
        self.inducing = nn.Parameter(torch.randn(1, num_inducing, width) / math.sqrt(width))
        self.mab1, self.mab2 = _MAB(width, num_heads), _MAB(width, num_heads)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        h = self.mab1(self.inducing.expand(len(x), -1, -1), x, mask)
        return self.mab2(x, h)


class SetTransformerEncoder(SetEncoder):
    """Set Transformer: ISAB blocks, PMA pooling with k seeds, ρ([PMA, log n]) + L([mean, log n]).

    Arguments:
        element_dim, max_trials, min_trials, output_dim, subsample_trials: As for
            :class:`SetEncoder`.
        hidden_features: Attention width (divisible by ``num_heads``).
        num_heads: Attention heads.
        num_inducing: Inducing points per ISAB.
        num_blocks: ISAB blocks.
        num_seeds: PMA seed vectors.
    """

    kind = "set_transformer"

    def __init__(
        self,
        element_dim: int,
        max_trials: int,
        min_trials: int = 1,
        output_dim: int = 16,
        hidden_features: int = 32,
        num_heads: int = 4,
        num_inducing: int = 8,
        num_blocks: int = 2,
        num_seeds: int = 1,
        subsample_trials: float = 0.5,
    ) -> None:
        super().__init__(element_dim, max_trials, min_trials, output_dim, subsample_trials)
        if hidden_features % num_heads:
            raise ValueError(
                f"embedding net {self.kind!r}: hidden_features ({hidden_features}) must be "
                f"divisible by num_heads ({num_heads})"
            )
        self.embed = nn.Linear(element_dim, hidden_features)
        self.blocks = nn.ModuleList(
            _ISAB(hidden_features, num_heads, num_inducing) for _ in range(num_blocks)
        )
        self.seeds = nn.Parameter(torch.randn(1, num_seeds, hidden_features) / 4)
        self.pma = _MAB(hidden_features, num_heads)
        self.rho = _mlp(hidden_features * num_seeds + 1, hidden_features, 1, output_dim)

    def forward(self, x: Tensor) -> Tensor:
        """Summaries ``(B, output_dim)`` of padded sets ``(B, max_trials, element_dim)``."""
        z, mask, sizes = self._inputs(x)
        h = self.embed(z)
        for block in self.blocks:
            h = block(h, mask)
        pooled = self.pma(self.seeds.expand(len(h), -1, -1), h, mask).flatten(1)
        summary = self.rho(torch.cat([pooled, self.size_feature(sizes)], dim=-1))
        return summary + self.linear_summary(z, sizes)


def find_set_encoder(module: object) -> SetEncoder | None:
    """The first :class:`SetEncoder` inside ``module`` (a network, an sbi trainer, a posterior)."""
    from sbiplug.sbi_internals import is_trainer, trained_network

    if is_trainer(module):
        module = trained_network(module)
    if module is not None and not isinstance(module, nn.Module):
        module = getattr(module, "posterior_estimator", None)
    if not isinstance(module, nn.Module):
        return None
    for child in module.modules():
        if getattr(child, "sbiplug_set_encoder", False):
            return child  # type: ignore[return-value]
    return None
