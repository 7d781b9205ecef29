"""Default summary networks: permutation invariance, shapes, linear (unbounded) outputs."""

from __future__ import annotations

import pytest
import torch

from sbiplug_misspec.networks import DeepSetEmbedding, MLPEmbedding, default_embedding_net


@pytest.mark.parametrize("pooling", ["mean", "mean_std"])
def test_deepset_is_permutation_invariant_and_unbounded(pooling):
    torch.manual_seed(0)
    net = DeepSetEmbedding(2, 4, hidden_features=16, pooling=pooling)
    x = torch.randn(3, 30, 2)
    permuted = x[:, torch.randperm(30)]
    torch.testing.assert_close(net(x), net(permuted))
    assert net(x).shape == (3, 4)
    # A linear last layer: negative outputs are possible (sbi's FCEmbedding ends in a ReLU).
    assert bool((net(torch.randn(200, 30, 2) * 3) < 0).any())


def test_default_network_follows_the_data_shape():
    assert isinstance(default_embedding_net((100, 2), 4), DeepSetEmbedding)
    assert isinstance(default_embedding_net((7,), 4), MLPEmbedding)
    assert default_embedding_net((7,), 5)(torch.randn(2, 7)).shape == (2, 5)
    with pytest.raises(ValueError, match="embedding_net"):
        default_embedding_net((3, 4, 5), 4)
    with pytest.raises(ValueError, match="pooling"):
        DeepSetEmbedding(2, 4, pooling="max")
