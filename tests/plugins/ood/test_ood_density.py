"""train_density: checkpoints, raw-data densities, conditional and sbi estimators."""

from __future__ import annotations

import math

import pytest
import torch

from sbiplug_ood import (
    EstimatorDensity,
    GradientNormScorer,
    StandardizedFlow,
    auroc,
    group_log_prob,
    train_density,
)


@pytest.fixture(scope="module")
def shifted_gaussians():
    generator = torch.Generator().manual_seed(12)
    scale = torch.tensor([1.0, 2.0, 0.5, 3.0])
    x = 5.0 + scale * torch.randn(1600, 4, generator=generator)
    return x, scale


@pytest.fixture(scope="module")
def checkpoints(shifted_gaussians):
    x, _ = shifted_gaussians
    return train_density(
        x[:800],
        4,
        [0, 1, 4],
        flow="maf",
        hidden_features=(32, 32),
        transforms=2,
        batch_size=64,
        seed=0,
    )


def test_checkpoints_are_distinct_copies_that_learn(shifted_gaussians, checkpoints):
    x, scale = shifted_gaussians
    assert sorted(checkpoints) == [0, 1, 4]
    assert all(isinstance(m, StandardizedFlow) and not m.training for m in checkpoints.values())
    first, last = checkpoints[0], checkpoints[4]
    assert first.flow is not last.flow
    assert not torch.equal(next(first.parameters()), next(last.parameters()))
    held_out = x[800:]
    nll = {e: -float(group_log_prob(m, held_out).mean()) for e, m in checkpoints.items()}
    assert nll[4] < nll[0]
    # The density is of raw x: close to the true Gaussian entropy, not the standardised one.
    entropy = float(0.5 * 4 * math.log(2 * math.pi * math.e) + scale.log().sum())
    assert abs(nll[4] - entropy) < 0.5


def test_same_seed_same_models(shifted_gaussians, checkpoints):
    x, _ = shifted_gaussians
    again = train_density(
        x[:800], 1, [1], flow="maf", hidden_features=(32, 32), transforms=2, batch_size=64, seed=0
    )
    for a, b in zip(again[1].parameters(), checkpoints[1].parameters()):
        torch.testing.assert_close(a, b)


def test_clear_shift_auroc_at_immature_checkpoint(shifted_gaussians, checkpoints):
    x, scale = shifted_gaussians
    generator = torch.Generator().manual_seed(13)
    shifted = 5.0 + 2.0 + scale * torch.randn(400, 4, generator=generator)
    scorer = GradientNormScorer(checkpoints[1]).fit(x[800:1200])
    assert auroc(scorer.score(x[1200:]), scorer.score(shifted)) >= 0.9


def test_conditional_and_zuko_class_and_sbi_estimator():
    import zuko
    from sbi.neural_nets import likelihood_nn

    generator = torch.Generator().manual_seed(14)
    theta = torch.randn(300, 2, generator=generator)
    x = theta + 0.3 * torch.randn(300, 2, generator=generator)
    models = train_density(
        x, 1, [1], context=theta, flow=zuko.flows.RealNVP, hidden_features=(16,), transforms=2
    )
    assert group_log_prob(models[1], x[:10], theta[:10]).shape == (10,)
    assert models[1].sample(1, theta[:7]).shape == (7, 2)

    estimator = likelihood_nn("maf", hidden_features=16)(theta, x)
    trained = train_density(x, 2, [0, 2], context=theta, flow=estimator, batch_size=50)
    assert isinstance(trained[2], EstimatorDensity)
    nll = {e: -float(group_log_prob(m, x, theta).mean()) for e, m in trained.items()}
    assert nll[2] < nll[0]


def test_train_density_errors(shifted_gaussians):
    x, _ = shifted_gaussians
    with pytest.raises(ValueError, match=r"checkpoints must be .* in \[0, 3\]"):
        train_density(x, 3, [5])
    with pytest.raises(ValueError, match="flow 'glow' is unknown"):
        train_density(x, 1, flow="glow")
    with pytest.raises(ValueError, match="shape"):
        train_density(x[0], 1)
    with pytest.raises(ValueError, match="NaN"):
        train_density(torch.full((4, 2), float("nan")), 1)
    with pytest.raises(ValueError, match="context must be a tensor"):
        train_density(x, 1, context=x[:3])


def test_realnvp_by_name_vectorizes(shifted_gaussians):
    import zuko

    x, _ = shifted_gaussians
    models = train_density(
        x[:200], 1, [1], flow="RealNVP", hidden_features=(16,), transforms=2, seed=0
    )
    assert isinstance(models[1].flow, zuko.flows.RealNVP)
    # Affine coupling layers batch under torch.func.vmap: no fallback to the autograd loop.
    features = GradientNormScorer(models[1], vectorize=True).features(x[200:216])
    assert features.shape == (16, len(list(models[1].parameters())))
    assert torch.isfinite(features).all()
