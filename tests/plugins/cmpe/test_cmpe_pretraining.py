"""CMPE calls an embedding net's pretrain(x) on the training x, z-scored, when it builds."""

from __future__ import annotations

import torch
from torch import nn

from sbiplug_cmpe.trainer import CMPE


class Recording(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 2)
        self.seen: list[torch.Tensor] = []

    def forward(self, x):
        return self.linear(x)

    def pretrain(self, x):
        self.seen.append(x.clone())


def test_cmpe_pretrains_the_embedding_net_before_training():
    net = Recording()
    theta, x = torch.randn(100, 2), 5.0 + 3.0 * torch.randn(100, 3)
    CMPE(embedding_net=net)._build_consistency_estimator(theta, x)
    (seen,) = net.seen
    torch.testing.assert_close(seen.mean(0), torch.zeros(3), atol=1e-4, rtol=0)
