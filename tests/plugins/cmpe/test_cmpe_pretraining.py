"""CMPE calls an embedding net's pretrain(x) on the training x, z-scored, when it builds."""

from __future__ import annotations

import torch

from sbiplug.testing.pretraining import PretrainRecorder
from sbiplug_cmpe.trainer import CMPE


def test_cmpe_pretrains_the_embedding_net_before_training():
    net = PretrainRecorder(3)
    theta, x = torch.randn(100, 2), 5.0 + 3.0 * torch.randn(100, 3)
    CMPE(embedding_net=net)._build_consistency_estimator(theta, x)
    (seen,) = net.seen
    torch.testing.assert_close(seen.mean(0), torch.zeros(3), atol=1e-4, rtol=0)
