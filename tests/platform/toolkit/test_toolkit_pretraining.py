"""The summary-net pretraining protocol: pretrain(x) is called on the training x first."""

from __future__ import annotations

import torch
from torch import nn

import sbiplug
from sbiplug.testing.pretraining import PretrainRecorder
from sbiplug.toolkit import Standardize, pretrain_embedding_net, skip_pretraining


def test_pretrain_sees_x_through_the_layers_in_front():
    x = 3.0 + 2.0 * torch.randn(500, 4)
    net = PretrainRecorder(4)
    chain = nn.Sequential(Standardize.from_data(x), net)
    assert pretrain_embedding_net(chain, x)
    (seen,) = net.seen
    torch.testing.assert_close(seen.mean(0), torch.zeros(4), atol=1e-5, rtol=0)
    torch.testing.assert_close(seen.std(0), torch.ones(4), atol=1e-2, rtol=0)
    with skip_pretraining():
        assert not pretrain_embedding_net(chain, x)
    assert len(net.seen) == 1
    assert not pretrain_embedding_net(nn.Linear(4, 2), x)
    assert not pretrain_embedding_net(None, x)


def test_npe_pretrains_its_embedding_net_on_the_training_x():
    simulator = sbiplug.make_simulator("gaussian_linear")
    theta = simulator.sample_prior(200, seed=0)
    x = simulator.simulate(theta, seed=1)
    net = PretrainRecorder(x.shape[1])
    trainer = sbiplug.make_estimator(
        "npe", simulator.prior, embedding_net=net, hidden_features=8, num_transforms=1
    )
    trainer.append_simulations(theta, x).train(max_num_epochs=1, show_train_summary=False)
    (seen,) = net.seen
    assert seen.shape == (round(0.9 * len(x)), x.shape[1])  # the training rows, z-scored
    torch.testing.assert_close(seen.mean(0), torch.zeros(x.shape[1]), atol=0.05, rtol=0)
