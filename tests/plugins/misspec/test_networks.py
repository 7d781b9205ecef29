"""Default summary networks: permutation invariance, shapes, linear (unbounded) outputs."""

from __future__ import annotations

import pytest
import torch

from sbiplug_misspec.networks import (
    DeepSetEmbedding,
    MLPEmbedding,
    PooledBatchNorm,
    default_embedding_net,
)


@pytest.mark.parametrize("pooling", ["centred", "mean", "mean_std"])
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
    assert default_embedding_net((100, 2), 4).pooling == "mean"


def test_pooled_batch_norm_standardises_batches_and_accepts_one_row():
    torch.manual_seed(0)
    norm = PooledBatchNorm(3)
    features = torch.randn(500, 3) * torch.tensor([0.1, 1.0, 5.0]) + 2.0
    out = norm(features)
    torch.testing.assert_close(out.mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.std(0, unbiased=False), torch.ones(3), atol=1e-3, rtol=0)
    # One row in training mode (sbi probes a new estimator so): running statistics, no update.
    running_mean = norm.running_mean.clone()
    one = norm(features[:1])
    expected = (features[:1] - running_mean) / (norm.running_var + norm.eps).sqrt()
    torch.testing.assert_close(one, expected)
    torch.testing.assert_close(norm.running_mean, running_mean)


def test_centred_pooling_keeps_a_location_block_and_a_shape_block():
    torch.manual_seed(0)
    net = DeepSetEmbedding(2, 4, hidden_features=16, pooling="centred").eval()
    x = torch.randn(5, 30, 2)
    moved = x + torch.tensor([3.0, -2.0])
    wider = x.mean(dim=-2, keepdim=True) + 3.0 * (x - x.mean(dim=-2, keepdim=True))
    # The location block (the first d summaries) is affine in the set mean; the shape block
    # sees only x_k - x̄: moving a set leaves it unchanged, widening it does not.
    shift = net.location_map.weight @ torch.tensor([3.0, -2.0])
    torch.testing.assert_close(net(moved)[:, :2] - net(x)[:, :2], shift.expand(5, 2))
    torch.testing.assert_close(net(wider)[:, :2], net(x)[:, :2])
    torch.testing.assert_close(net(x)[:, 2:], net(moved)[:, 2:], atol=1e-5, rtol=0)
    assert not torch.allclose(net(x)[:, 2:], net(wider)[:, 2:], atol=1e-3)
    # The blocks do not mix: the shape branch cannot touch the location summaries.
    location = net(x)[:, :2].clone()
    with torch.no_grad():
        for parameter in net.centred_net.parameters():
            parameter.add_(1.0)
    torch.testing.assert_close(net(x)[:, :2], location)
    assert DeepSetEmbedding(2, 3, hidden_features=8, pooling="centred")(x).shape == (5, 3)
    with pytest.raises(ValueError, match="summary_dim > input_dim = 2"):
        DeepSetEmbedding(2, 2, pooling="centred")
    assert DeepSetEmbedding(2, 1, pooling="mean")(x).shape == (5, 1)


def test_the_network_declares_the_scale_of_its_summaries_under_the_target():
    assert DeepSetEmbedding(2, 4, pooling="centred").target_scale == (1.0, 1.0, 0.5, 0.5)
    assert DeepSetEmbedding(2, 5, pooling="centred", shape_scale=0.3).target_scale == (
        (1.0,) * 2 + (0.3,) * 3
    )
    assert DeepSetEmbedding(2, 3, pooling="mean", shape_scale=0.3).target_scale == (1.0,) * 3
    with pytest.raises(ValueError, match="shape_scale"):
        DeepSetEmbedding(2, 4, pooling="centred", shape_scale=0.0)


def test_centred_shape_block_starts_at_the_standardised_log_spread():
    torch.manual_seed(0)
    net = DeepSetEmbedding(2, 4, hidden_features=16, pooling="centred", shape_scale=0.5).train()
    x = torch.randn(400, 30, 2) * torch.rand(400, 1, 1).add(0.5) + torch.randn(400, 1, 2)
    shape = net(x)[:, 2:].detach()
    residuals = x - x.mean(dim=1, keepdim=True)
    log_spread = residuals.square().sum(dim=-1).mean(dim=-1).log()
    standardised = (log_spread - log_spread.mean()) / log_spread.std(unbiased=False)
    # Training-mode batch norm standardises over the batch; the first shape summary is then
    # σ times the standardised log spread, and every shape summary has standard deviation σ.
    torch.testing.assert_close(shape[:, 0], 0.5 * standardised, atol=1e-3, rtol=0)
    torch.testing.assert_close(
        shape.std(dim=0, unbiased=False), torch.full((2,), 0.5), atol=1e-3, rtol=0
    )


def test_centred_location_block_is_whitened_once_on_the_first_training_batch():
    torch.manual_seed(0)
    net = DeepSetEmbedding(2, 4, hidden_features=8, pooling="centred")
    mixing = torch.tensor([[2.0, 0.0], [1.5, 0.5]])
    means = torch.randn(500, 2) @ mixing.T + torch.tensor([1.0, -3.0])
    x = means[:, None, :] + 0.1 * torch.randn(500, 20, 2)
    # Too few sets (sbi probes a new estimator with one) or eval mode: left as initialised.
    net(x[:5])
    net.eval()(x)
    assert not net.location_whitened
    location = net.train()(x)[:, :2].detach()
    assert net.location_whitened
    torch.testing.assert_close(location.mean(0), torch.zeros(2), atol=1e-4, rtol=0)
    torch.testing.assert_close(torch.cov(location.T), torch.eye(2), atol=1e-4, rtol=0)
    # Once whitened, the map is the optimiser's: later batches do not reset it.
    weight = net.location_map.weight.clone()
    net(3.0 * x)
    torch.testing.assert_close(net.location_map.weight, weight)
    restored = DeepSetEmbedding(2, 4, hidden_features=8, pooling="centred")
    restored.load_state_dict(net.state_dict())
    assert restored.location_whitened
