"""Summary (embedding) networks whose outputs can be pushed towards N(0, I).

A DeepSet (Zaheer et al., 2017) for set-valued data of shape ``(batch, n, d)`` and an MLP for
vectors. Both end in a *linear* layer: sbi's ``PermutationInvariantEmbedding`` and
``FCEmbedding`` end in a ReLU, so their summaries are non-negative and cannot match a standard
normal, which the MMD regulariser of Schmitt et al. (2023) asks for.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["DeepSetEmbedding", "MLPEmbedding", "default_embedding_net"]


def _mlp(input_dim: int, hidden_features: int, num_layers: int, output_dim: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = input_dim
    for _ in range(num_layers):
        layers += [nn.Linear(width, hidden_features), nn.ELU()]
        width = hidden_features
    layers.append(nn.Linear(width, output_dim))
    return nn.Sequential(*layers)


class DeepSetEmbedding(nn.Module):
    """Permutation-invariant summary ``ρ(pool_k φ(x_k))`` of a set of i.i.d. observations.

    Arguments:
        input_dim: Dimension d of one observation.
        summary_dim: Output dimension S.
        hidden_features: Width of φ and ρ.
        num_layers: Hidden layers in each of φ and ρ.
        pooling: ``"mean"`` or ``"mean_std"`` (mean and standard deviation of φ over the set,
            concatenated), which hands ρ the spread of the set as well as its location.
    """

    def __init__(
        self,
        input_dim: int,
        summary_dim: int,
        hidden_features: int = 64,
        num_layers: int = 2,
        pooling: str = "mean",
    ) -> None:
        super().__init__()
        if pooling not in ("mean", "mean_std"):
            raise ValueError(f"pooling must be 'mean' or 'mean_std', got {pooling!r}")
        self.input_dim = input_dim
        self.summary_dim = summary_dim
        self.pooling = pooling
        pooled = hidden_features * (2 if pooling == "mean_std" else 1)
        self.element_net = _mlp(input_dim, hidden_features, num_layers, hidden_features)
        self.set_net = _mlp(pooled, hidden_features, num_layers, summary_dim)

    def forward(self, x: Tensor) -> Tensor:
        """Summaries of data sets.

        Arguments:
            x: Data sets, shape ``(batch, n, d)``.

        Returns:
            Summaries, shape ``(batch, S)``.
        """
        features = self.element_net(x)
        pooled = features.mean(dim=-2)
        if self.pooling == "mean_std":
            spread = features.var(dim=-2, unbiased=False).add(1e-6).sqrt()
            pooled = torch.cat([pooled, spread], dim=-1)
        return self.set_net(pooled)


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
) -> nn.Module:
    """A DeepSet for set-valued data ``(n, d)``, an MLP for vectors ``(d,)``.

    Raises:
        ValueError: for data with more than two event dimensions (pass your own network).
    """
    shape = tuple(int(s) for s in observation_shape)
    if len(shape) == 2:
        return DeepSetEmbedding(shape[1], summary_dim, hidden_features, num_layers, pooling)
    if len(shape) == 1:
        return MLPEmbedding(shape[0], summary_dim, hidden_features, num_layers)
    raise ValueError(
        f"no default summary network for observations of shape {shape}: expected (d,) "
        "(MLP) or (n, d) (DeepSet over n i.i.d. observations); pass embedding_net=<nn.Module>"
    )
