"""Context-aware prediction f(X, φ(S)) and its context-free (ERM) counterpart.

Marginal transfer learning as in Müller et al. (arXiv 2312.10107): the prediction for a query
X from an environment also sees φ(S), a permutation-invariant embedding of a set S of inputs
from the same environment, learned jointly with the supervised loss. Training sets S have
random sizes in ``[min_set, max_set]`` so the model copes with small sets at test time. The ERM
model is the same MLP without φ(S).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sbiplug.toolkit import as_generator, check_positive_int
from sbiplug_context.encoders import DeepSetEncoder
from sbiplug_context.extrapolation import embed_sets

__all__ = ["ContextRegressor", "random_sets"]


def random_sets(x: Tensor, min_set: int, max_set: int, *, seed: int = 0) -> Tensor:
    """One random subset per environment of x ``(E, N, d)``, NaN-padded: ``(E, max_set, d)``."""
    rng = as_generator(seed)
    sizes = rng.integers(min_set, max_set + 1, len(x))
    out = torch.full((len(x), max_set, x.shape[-1]), float("nan"))
    for e, size in enumerate(sizes):
        rows = torch.as_tensor(rng.permutation(x.shape[1])[:size])
        out[e, :size] = x[e, rows]
    return out


class ContextRegressor(nn.Module):
    """y ≈ f([x, φ(S)]) with a DeepSets φ, or y ≈ f(x) when ``use_context=False`` (ERM).

    Arguments:
        input_dim: Dimension of x (and of the elements of S).
        use_context: Whether to feed φ(S).
        min_set, max_set: The range of set sizes trained on.
        context_dim: Dimension of φ(S).
        hidden_features: Width of f and φ.
    """

    def __init__(
        self,
        input_dim: int,
        *,
        use_context: bool = True,
        min_set: int = 10,
        max_set: int = 100,
        context_dim: int = 8,
        hidden_features: int = 64,
    ) -> None:
        super().__init__()
        self.input_dim = check_positive_int("input_dim", input_dim, owner="ContextRegressor")
        self.use_context, self.min_set, self.max_set = use_context, min_set, max_set
        self.encoder = (
            # fit() draws a fresh random set of random size each step: no subsampling on top
            DeepSetEncoder(
                input_dim,
                max_set,
                min_set,
                context_dim,
                hidden_features=hidden_features,
                subsample_trials=0.0,
            )
            if use_context
            else None
        )
        width = input_dim + (context_dim if use_context else 0)
        self.head = nn.Sequential(
            nn.Linear(width, hidden_features),
            nn.GELU(),
            nn.Linear(hidden_features, hidden_features),
            nn.GELU(),
            nn.Linear(hidden_features, 1),
        )

    def forward(self, x: Tensor, sets: Tensor | None = None) -> Tensor:
        """Predictions ``(E, Q)`` for queries x ``(E, Q, d)`` with sets ``(E, max_set, d)``."""
        features = x
        if self.encoder is not None:
            if sets is None:
                raise ValueError("ContextRegressor: a context model needs the sets S")
            context = self.encoder(sets)[:, None, :].expand(-1, x.shape[1], -1)
            features = torch.cat([x, context], dim=-1)
        return self.head(features).squeeze(-1)

    def fit(
        self,
        x: Tensor,
        y: Tensor,
        *,
        num_queries: int = 32,
        epochs: int = 300,
        batch_size: int = 64,
        learning_rate: float = 3e-3,
        seed: int = 0,
    ) -> ContextRegressor:
        """Train on environments: x ``(E, N, d)``, y ``(E, N)``. Each step draws, per
        environment in the batch, a random set S and ``num_queries`` other points as queries.
        """
        generator = torch.Generator().manual_seed(seed)
        optimiser = torch.optim.Adam(self.parameters(), lr=learning_rate)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, epochs)
        num_env = len(x)
        self.train()
        for epoch in range(epochs):
            order = torch.randperm(num_env, generator=generator)
            for start in range(0, num_env, batch_size):
                envs = order[start : start + batch_size]
                perm = torch.argsort(torch.rand(len(envs), x.shape[1], generator=generator), 1)
                xe = torch.gather(x[envs], 1, perm[..., None].expand(-1, -1, x.shape[2]))
                ye = torch.gather(y[envs], 1, perm)
                queries, targets = xe[:, :num_queries], ye[:, :num_queries]
                sets = random_sets(
                    xe[:, num_queries:],
                    self.min_set,
                    self.max_set,
                    seed=seed + 7919 * epoch + start,
                )
                loss = (self(queries, sets) - targets).square().mean()
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
            schedule.step()
        self.eval()
        return self

    def predict(self, x: Tensor, sets: Tensor | None = None) -> Tensor:
        """Predictions ``(E, Q)`` in eval mode without gradients."""
        self.eval()
        with torch.no_grad():
            return self(x, sets)

    def embed(self, sets: Tensor) -> Tensor:
        """φ(S) ``(E, context_dim)`` of padded sets (context models only)."""
        if self.encoder is None:
            raise ValueError("ContextRegressor.embed: an ERM model has no set encoder")
        return embed_sets(self.encoder, sets)
