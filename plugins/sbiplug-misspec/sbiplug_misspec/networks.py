"""Summary (embedding) networks whose outputs can be pushed towards a normal target.

A DeepSet (Zaheer et al., 2017) for set-valued data of shape ``(batch, n, d)`` and an MLP for
vectors, both ending in a *linear* layer: sbi's ``PermutationInvariantEmbedding`` and
``FCEmbedding`` end in a ReLU, so their summaries cannot match the standard normal that the MMD
regulariser of Schmitt et al. (2023) asks for.

- Pooling ``"mean"`` (default): ρ(mean_k φ(x_k)) + A x̄, a plain DeepSet plus a linear skip from
  the set mean x̄, so that far-away (misspecified) sets are not squashed back into the bulk.
- Pooling ``"centred"``: two blocks, [W x̄ + b, σ · BN[ρ'(h) + B h]] with
  h = BN[mean_k ψ(x_k − x̄), log mean_k ‖x_k − x̄‖²]: the set mean through an affine map whitened
  on the first training batch, and a narrower (sd σ = ``shape_scale``) shape block that starts
  at the log within-set spread. It suits location-type set data.

Why each piece is there, with the figures behind it: ``docs/design/misspec.md``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from sbiplug.toolkit import check_positive

__all__ = [
    "POOLINGS",
    "DeepSetEmbedding",
    "MLPEmbedding",
    "PooledBatchNorm",
    "default_embedding_net",
]

POOLINGS: tuple[str, ...] = ("centred", "mean", "mean_std")
# Fewer sets than this give too rough a covariance to whiten the set means with.
_MIN_WHITENING_BATCH = 32


def _mlp(input_dim: int, hidden_features: int, num_layers: int, output_dim: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = input_dim
    for _ in range(num_layers):
        layers += [nn.Linear(width, hidden_features), nn.ELU()]
        width = hidden_features
    layers.append(nn.Linear(width, output_dim))
    return nn.Sequential(*layers)


class PooledBatchNorm(nn.BatchNorm1d):
    """Batch normalisation (no affine part) of pooled features, shape ``(batch, features)``.

    Like :class:`torch.nn.BatchNorm1d`, except that a training-mode batch of one row (sbi
    probes a freshly built estimator with one) is normalised with the running statistics
    instead of raising.
    """

    def __init__(self, num_features: int) -> None:
        super().__init__(num_features, affine=False)

    def forward(self, features: Tensor) -> Tensor:
        if self.training and features.shape[0] < 2:
            return nn.functional.batch_norm(
                features, self.running_mean, self.running_var, training=False, eps=self.eps
            )
        return super().forward(features)


class DeepSetEmbedding(nn.Module):
    """Permutation-invariant summary of a set of i.i.d. observations.

    Arguments:
        input_dim: Dimension d of one observation.
        summary_dim: Output dimension S (more than d for ``"centred"``).
        hidden_features: Width of φ, ψ, ρ and ρ'.
        num_layers: Hidden layers in each of φ, ψ, ρ and ρ'.
        pooling: ``"mean"`` (default): ``ρ(mean_k φ(x_k)) + A x̄``; ``"centred"``: the
            location block ``W x̄ + b`` (d summaries, whitened on the first training batch of
            at least 32 sets), then a shape block of S − d summaries
            ``σ · BN[ρ'(h) + B h]`` with ``h = BN[mean_k ψ(x_k − x̄), log mean_k ‖x_k − x̄‖²]``,
            x̄ the set mean and BN a :class:`PooledBatchNorm` (see the module docstring for
            why); ``"mean_std"``: mean and standard deviation of φ over the set,
            concatenated, in place of the mean.
        shape_scale: σ, the shape block's standard deviation (``"centred"`` only), imposed
            by its final batch normalisation and declared in :attr:`target_scale`.
    """

    def __init__(
        self,
        input_dim: int,
        summary_dim: int,
        hidden_features: int = 64,
        num_layers: int = 2,
        pooling: str = "mean",
        shape_scale: float = 0.5,
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(
                f"pooling must be one of {', '.join(map(repr, POOLINGS))}, got {pooling!r}"
            )
        if pooling == "centred" and summary_dim <= input_dim:
            raise ValueError(
                f"centred pooling needs summary_dim > input_dim = {input_dim} (the set mean "
                f"and at least one shape summary), got {summary_dim}; use pooling='mean'"
            )
        self.input_dim = input_dim
        self.summary_dim = summary_dim
        self.pooling = pooling
        self.shape_scale = check_positive("shape_scale", shape_scale)
        if pooling == "centred":
            self.shape_dim = summary_dim - input_dim
            # The location block: an affine map of the set mean, whitened on the first
            # training batch (see the module docstring for why it is linear).
            self.location_map = nn.Linear(input_dim, input_dim)
            self.register_buffer("location_whitened", torch.tensor(False))
            self.centred_net = _mlp(input_dim, hidden_features, num_layers, hidden_features)
            # + 1: the log within-set spread, next to the learned shape features.
            self.norm = PooledBatchNorm(hidden_features + 1)
            self.shape_net = _mlp(hidden_features + 1, hidden_features, num_layers, self.shape_dim)
            self.shape_skip = nn.Linear(hidden_features + 1, self.shape_dim, bias=False)
            self.shape_norm = PooledBatchNorm(self.shape_dim)
            # The first shape summary starts as the standardised log spread; see the module
            # docstring for why.
            with torch.no_grad():
                self.shape_net[-1].weight[0].zero_()
                self.shape_net[-1].bias[0].zero_()
                self.shape_skip.weight.zero_()
                self.shape_skip.weight[0, -1] = 1.0
        else:
            self.shape_dim = 0
            pooled = hidden_features * (2 if pooling == "mean_std" else 1)
            self.element_net = _mlp(input_dim, hidden_features, num_layers, hidden_features)
            self.set_net = _mlp(pooled, hidden_features, num_layers, summary_dim)
            self.mean_skip = nn.Linear(input_dim, summary_dim, bias=False)

    @property
    def target_scale(self) -> tuple[float, ...]:
        """Standard deviation of each summary under the regulariser's normal target, ``(S,)``.

        1 for the location block, ``shape_scale`` for the shape block of ``"centred"``.
        """
        location = self.summary_dim - self.shape_dim
        return (1.0,) * location + (self.shape_scale,) * self.shape_dim

    def forward(self, x: Tensor) -> Tensor:
        """Summaries of data sets.

        Arguments:
            x: Data sets, shape ``(batch, n, d)``.

        Returns:
            Summaries, shape ``(batch, S)``; for ``"centred"`` the location block first.
        """
        set_mean = x.mean(dim=-2)
        if self.pooling != "centred":
            features = self.element_net(x)
            pooled = features.mean(dim=-2)
            if self.pooling == "mean_std":
                spread = features.var(dim=-2, unbiased=False).add(1e-6).sqrt()
                pooled = torch.cat([pooled, spread], dim=-1)
            return self.set_net(pooled) + self.mean_skip(set_mean)
        if self.training and not self.location_whitened and len(set_mean) >= _MIN_WHITENING_BATCH:
            self._whiten_location(set_mean)
        centred = x - set_mean[..., None, :]
        log_spread = centred.square().sum(dim=-1).mean(dim=-1, keepdim=True).add(1e-12).log()
        pooled_shape = torch.cat([self.centred_net(centred).mean(dim=-2), log_spread], dim=-1)
        shape = self.norm(pooled_shape)
        shape = self.shape_norm(self.shape_net(shape) + self.shape_skip(shape))
        return torch.cat([self.location_map(set_mean), self.shape_scale * shape], dim=-1)

    @torch.no_grad()
    def _whiten_location(self, set_mean: Tensor) -> None:
        """Set the location map to whiten the set means of this batch, shape ``(batch, d)``."""
        centre = set_mean.mean(dim=0)
        covariance = torch.cov(set_mean.T.double()).reshape(self.input_dim, self.input_dim)
        # The floor keeps the factor defined when a coordinate's set mean never varies.
        jitter = 1e-6 * covariance.diagonal().mean() + 1e-9
        identity = torch.eye(self.input_dim, dtype=covariance.dtype, device=covariance.device)
        cholesky = torch.linalg.cholesky(covariance + jitter * identity)
        weight = torch.linalg.inv(cholesky).to(set_mean.dtype)
        self.location_map.weight.copy_(weight)
        self.location_map.bias.copy_(-weight @ centre)
        self.location_whitened.fill_(True)


class MLPEmbedding(nn.Module):
    """A fully connected summary network for vector-valued (or flattened) data.

    Arguments:
        input_dim: Number of features of one data set.
        summary_dim: Output dimension S.
        hidden_features: Width of the hidden layers.
        num_layers: Number of hidden layers.
    """

    def __init__(
        self, input_dim: int, summary_dim: int, hidden_features: int = 64, num_layers: int = 2
    ) -> None:
        super().__init__()
        self.input_dim = input_dim
        self.summary_dim = summary_dim
        self.net = _mlp(input_dim, hidden_features, num_layers, summary_dim)

    def forward(self, x: Tensor) -> Tensor:
        """Summaries, shape ``(batch, S)``, of data of shape ``(batch, *event_shape)``."""
        return self.net(torch.flatten(x, start_dim=1))


def default_embedding_net(
    observation_shape: Sequence[int],
    summary_dim: int,
    hidden_features: int = 64,
    num_layers: int = 2,
    pooling: str = "mean",
    shape_scale: float = 0.5,
) -> nn.Module:
    """A DeepSet for set-valued data ``(n, d)``, an MLP for vectors ``(d,)``.

    Raises:
        ValueError: for data with more than two event dimensions (pass your own network).
    """
    shape = tuple(int(s) for s in observation_shape)
    if len(shape) == 2:
        return DeepSetEmbedding(
            shape[1], summary_dim, hidden_features, num_layers, pooling, shape_scale
        )
    if len(shape) == 1:
        return MLPEmbedding(shape[0], summary_dim, hidden_features, num_layers)
    raise ValueError(
        f"no default summary network for observations of shape {shape}: expected (d,) "
        "(MLP) or (n, d) (DeepSet over n i.i.d. observations); pass embedding_net=<nn.Module>"
    )
