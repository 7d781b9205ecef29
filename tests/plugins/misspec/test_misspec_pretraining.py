"""npe_mmd calls a user embedding net's pretrain(x) on the training x when it builds."""

from __future__ import annotations

import torch

from sbiplug.testing.pretraining import PretrainRecorder
from sbiplug_misspec.estimator import NPEMMD


def test_npe_mmd_pretrains_the_embedding_net_before_training():
    net = PretrainRecorder(3)
    theta, x = torch.randn(100, 2), 5.0 + 3.0 * torch.randn(100, 3)
    NPEMMD(embedding_net=net)._build_density_estimator(theta, x)
    (seen,) = net.seen
    assert seen.shape == (100, 3)
    torch.testing.assert_close(seen.mean(0), torch.zeros(3), atol=1e-4, rtol=0)  # z-scored
