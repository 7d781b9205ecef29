"""Conditional residual networks used as free-form encoders and decoders.

Free-form flows (Draxler et al., arXiv 2310.16624) accept any architecture; following the
authors' configurations we use residual MLPs with SiLU activations, a global skip connection
and a zero-initialised output layer, so that encoder and decoder start as the identity.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["ConditionalResidualNet"]


class ConditionalResidualNet(nn.Module):
    """y = x + MLP([x, c]), a residual MLP with SiLU activations and a global skip.

    Arguments:
        features: Dimension D of x and y.
        condition_features: Dimension of the condition c (0 for unconditional use).
        hidden_features: Width of the hidden layers.
        num_blocks: Number of residual blocks (two linear layers each).
    """

    def __init__(
        self,
        features: int,
        condition_features: int,
        hidden_features: int = 128,
        num_blocks: int = 2,
    ):
        super().__init__()
        self.input_layer = nn.Linear(features + condition_features, hidden_features)
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.SiLU(),
                nn.Linear(hidden_features, hidden_features),
                nn.SiLU(),
                nn.Linear(hidden_features, hidden_features),
            )
            for _ in range(num_blocks)
        )
        self.output_layer = nn.Sequential(nn.SiLU(), nn.Linear(hidden_features, features))
        nn.init.zeros_(self.output_layer[1].weight)
        nn.init.zeros_(self.output_layer[1].bias)

    def forward(self, x: Tensor, condition: Tensor) -> Tensor:
        """Arguments: x ``(*, D)``, condition ``(*, C)``. Returns: ``(*, D)``."""
        hidden = self.input_layer(torch.cat([x, condition], dim=-1))
        for block in self.blocks:
            hidden = hidden + block(hidden)
        return x + self.output_layer(hidden)
