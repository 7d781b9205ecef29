"""Free-form flows as sbi density estimators: training, exact density, sampling, errors."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from sbi.inference import NPE
from sbi.utils.metrics import c2st

import sbiplug
from sbiplug.sbi_internals import build_network, trained_network
from sbiplug.toolkit import NullTracker
from sbiplug_fff import build_mfff
from sbiplug_fff.distributions import UniformManifold
from sbiplug_fff.flow import FreeFormFlow, ManifoldFreeFormFlow
from sbiplug_fff.manifolds import so3, sphere, torus

# A small budget: broad vMF posteriors (kappa ~ 2-4), 1500 simulations, ~350 Adam steps.
SIMULATOR_OPTIONS = {"num_observations": 3, "concentration": 1.0}
NETWORK = {
    "hidden_features": 64,
    "uniform_reconstruction_weight": 0.0,
    "latent_reconstruction_weight": 0.0,
}
C2ST_BOUND = 0.62  # vs the analytic posterior, 1000 draws each, mean over 2 observations


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    simulator = sbiplug.make_simulator("vmf_direction", **SIMULATOR_OPTIONS)
    theta = simulator.sample_prior(1500, seed=0)
    x = simulator.simulate(theta, seed=1)
    trainer = sbiplug.make_estimator("mfff", simulator.prior, manifold="sphere", **NETWORK)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.append_simulations(theta, x).train(
            max_num_epochs=15, training_batch_size=64, learning_rate=3e-3
        )
    observations = simulator.simulate(simulator.sample_prior(2, seed=2), seed=3)
    return simulator, trainer, trainer.build_posterior(), observations


def test_mfff_reaches_the_c2st_bound_on_vmf_direction(trained) -> None:
    simulator, _, posterior, observations = trained
    scores = []
    for i, x_o in enumerate(observations):
        reference = simulator.reference_posterior(x_o, 1000, seed=10 + i)
        torch.manual_seed(20 + i)
        draws = posterior.sample((1000,), x=x_o, show_progress_bars=False)
        assert sphere(2).contains(draws, atol=1e-5).all()
        scores.append(float(c2st(draws, reference, seed=0, n_folds=2)))
    assert sum(scores) / len(scores) < C2ST_BOUND, scores


def test_exact_log_prob_integrates_to_one_over_the_sphere(trained) -> None:
    # 4 pi E_uniform[q(theta | x)] = 1; Monte Carlo with 20 000 points, 4 standard errors,
    # plus 5% for the decoder density of a flow that is only approximately invertible
    _, trainer, posterior, observations = trained
    estimator = trained_network(trainer)
    torch.manual_seed(4)
    points = sphere(2).sample_uniform((20_000,))
    for x_o in observations:
        with torch.no_grad():
            density = estimator.log_prob(points, x_o.expand(len(points), -1))[0].double().exp()
        values = density * 4 * math.pi
        standard_error = float(values.std()) / math.sqrt(len(values))
        assert abs(float(values.mean()) - 1) < 4 * standard_error + 0.05
        # sbi's posterior gives the same density (no leakage: samples lie in the support)
        theta = points[:50]
        torch.testing.assert_close(
            posterior.log_prob(theta, x=x_o), density[:50].log().float(), atol=1e-3, rtol=1e-3
        )
    errors = estimator.reconstruction_error(points[:500], observations[:1].expand(500, -1))
    assert float(errors.mean()) < 0.05


def test_sbi_tools_accept_the_manifold_posterior(trained) -> None:
    simulator, _, posterior, observations = trained
    batched = posterior.sample_batched((30,), x=observations, show_progress_bars=False)
    assert batched.shape == (30, 2, 3)
    assert sphere(2).contains(batched, atol=1e-5).all()
    # prior-support rejection: unit vectors count as inside the uniform sphere prior
    assert simulator.prior.support.check(batched.reshape(-1, 3)).all()
    assert torch.isinf(posterior.log_prob(2 * batched[:, 0], x=observations[0])).all()


def test_build_mfff_works_in_plain_sbi_and_rejects_off_manifold_parameters() -> None:
    prior = UniformManifold("torus")
    trainer = NPE(
        prior,
        density_estimator=build_mfff(manifold="torus"),
        show_progress_bars=False,
        tracker=NullTracker(),
    )
    theta = prior.sample((40,))
    trainer.append_simulations(theta, theta + 0.1 * torch.randn(40, 4))
    network = build_network(trainer, theta, theta)
    assert isinstance(network, ManifoldFreeFormFlow) and network.manifold.dim == 2
    with pytest.raises(ValueError, match="do not lie on torus"):
        build_mfff(manifold="torus")(theta * 2, theta)
    mfff = sbiplug.make_estimator("mfff", UniformManifold("sphere"), manifold="sphere")
    bad = torch.randn(20, 3)  # not unit vectors
    with pytest.raises(ValueError, match="parameters theta passed to append_simulations"):
        mfff.append_simulations(bad, torch.randn(20, 2))
    with pytest.raises(ValueError, match="supported manifolds: sphere, torus, so3"):
        sbiplug.make_estimator("mfff", UniformManifold("sphere"), manifold="klein_bottle")
    with pytest.raises(ValueError, match="embeds in R\\^9"):
        sbiplug.make_estimator("mfff", UniformManifold("torus"), manifold="so3")


@pytest.mark.parametrize("manifold", [sphere(2), torus(2), so3()], ids=repr)
def test_samples_lie_on_the_manifold_and_density_is_exact_at_init(manifold) -> None:
    torch.manual_seed(5)
    flow = ManifoldFreeFormFlow(manifold, (2,), hidden_features=32)
    with torch.no_grad():
        for parameter in flow.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    condition = torch.randn(3, 2)
    draws = flow.sample((200,), condition)
    assert draws.shape == (200, 3, manifold.embedding_dim)
    assert manifold.contains(draws, atol=1e-5).all()
    log_prob = flow.log_prob(draws, condition)
    assert log_prob.shape == (200, 3) and torch.isfinite(log_prob).all()
    # the identity flow (zero-initialised output layers) has the latent's density: uniform...
    identity = ManifoldFreeFormFlow(manifold, (2,), hidden_features=32, latent="uniform")
    points = manifold.sample_uniform((4, 3))
    values = identity.log_prob(points, condition)
    torch.testing.assert_close(values, torch.full((4, 3), -manifold.log_volume), atol=1e-5, rtol=0)
    if manifold.name == "so3":
        return
    # ... or the default (auto) mixture latent, evaluated at the embedded condition
    identity = ManifoldFreeFormFlow(manifold, (2,), hidden_features=32)
    assert identity.latent_kind == "mixture"
    latent = identity.mixture_latent.log_prob(
        points.reshape(12, -1), identity.embed(condition).repeat(4, 1)
    )
    torch.testing.assert_close(identity.log_prob(points, condition), latent.reshape(4, 3))


def test_euclidean_flow_standardises_theta_and_its_density_is_the_change_of_variables() -> None:
    # at initialisation g is the identity in standardised space: q = N(shift, scale^2)
    shift, scale = torch.tensor([1.0, -2.0]), torch.tensor([0.5, 3.0])
    flow = FreeFormFlow(2, (1,), theta_shift=shift, theta_scale=scale)
    theta = torch.randn(7, 2)
    expected = torch.distributions.Normal(shift, scale).log_prob(theta).sum(-1)
    torch.testing.assert_close(flow.log_prob(theta, torch.zeros(7, 1))[0], expected)
    draws = flow.sample((20_000,), torch.zeros(1, 1))[:, 0]
    torch.testing.assert_close(draws.mean(0), shift, atol=0.05, rtol=0)
    torch.testing.assert_close(draws.std(0), scale, atol=0.05, rtol=0.02)


def test_fff_passes_the_estimator_conformance_check() -> None:
    from sbiplug.testing import check_estimator

    measured = check_estimator(
        "fff",
        num_simulations=200,
        estimator_options={"hidden_features": 32},
        train_options={"max_num_epochs": 3},
    )
    assert measured["sample_shape"] == (20, 2)


def test_mfff_passes_the_estimator_conformance_check() -> None:
    from sbiplug.testing import check_estimator

    measured = check_estimator(
        "mfff",
        simulator="vmf_direction",
        num_simulations=200,
        estimator_options={"manifold": "sphere", "hidden_features": 32},
        train_options={"max_num_epochs": 3},
    )
    assert measured["sample_shape"] == (20, 3)
