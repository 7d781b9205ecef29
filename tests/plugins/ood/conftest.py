"""Small density models shared by the sbiplug_ood tests."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn
from torch.distributions import Normal


class DiagonalGaussian(nn.Module):
    """log N(x; loc, diag(exp(log_scale))^2): gradients known in closed form."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.loc = nn.Parameter(torch.zeros(dim))
        self.log_scale = nn.Parameter(torch.zeros(dim))

    def log_prob(self, x: Tensor) -> Tensor:
        return Normal(self.loc, self.log_scale.exp()).log_prob(x).sum(dim=-1)


@pytest.fixture
def gaussian_model() -> DiagonalGaussian:
    return DiagonalGaussian(8)


@pytest.fixture
def small_flow():
    """An untrained 4-D MAF behind a standardisation layer, float64 for tight comparisons."""
    import zuko

    from sbiplug_ood import StandardizedFlow

    torch.manual_seed(0)
    flow = zuko.flows.MAF(4, 0, hidden_features=(32, 32), transforms=3)
    return StandardizedFlow(flow, torch.zeros(4), torch.ones(4)).double()
