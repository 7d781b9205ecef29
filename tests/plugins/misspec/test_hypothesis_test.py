"""misspecification_test: calibration, power, N = 1, the vectorised null and errors."""

from __future__ import annotations

import math

import pytest
import torch
from sbi.inference import NPE
from scipy.stats import binom

from sbiplug.toolkit import NullTracker
from sbiplug_misspec import GaussianMeans, misspecification_test
from sbiplug_misspec.hypothesis_test import SimulatedNull
from sbiplug_misspec.regularizer import mmd_squared

N_OBS = 10


def sufficient_summary(x: torch.Tensor) -> torch.Tensor:
    """The sample mean, standardised: x̄ ~ N(0, (1 + 1/n_obs) I) under the training model."""
    return x.mean(1) / math.sqrt(1 + 1 / x.shape[1])


def binomial_bounds(n: int, p: float, tail: float = 1e-3) -> tuple[float, float]:
    return binom.ppf(tail, n, p) / n, binom.isf(tail, n, p) / n


@pytest.mark.parametrize("num_observed", [1, 3])
def test_false_positive_rate_is_calibrated_on_well_specified_data(num_observed):
    simulator = GaussianMeans(n_obs=N_OBS)
    replicates, alpha = 200, 0.1
    x = simulator.simulate(simulator.sample_prior(replicates * num_observed, seed=1), seed=2)
    x = x.reshape(replicates, num_observed, N_OBS, 2)
    rejections = sum(
        misspecification_test(
            sufficient_summary, simulator, x[r], num_reference=100, num_null=39, alpha=alpha,
            seed=100 + r,
        ).rejected
        for r in range(replicates)
    )  # fmt: skip
    # Exact test: size floor(alpha (1 + B)) / (1 + B) = 0.1; binomial tolerance, 1e-3 tails.
    low, high = binomial_bounds(replicates, alpha)
    assert low <= rejections / replicates <= high


@pytest.mark.parametrize(
    ("knobs", "num_observed"), [({"prior_loc": 5.0}, 1), ({"prior_scale": 4.0}, 5)]
)
def test_strong_misspecification_is_rejected(knobs, num_observed):
    simulator = GaussianMeans(n_obs=N_OBS)
    truth = GaussianMeans(n_obs=N_OBS, **knobs)
    x = truth.simulate(truth.sample_prior(num_observed, seed=3), seed=4)
    result = misspecification_test(sufficient_summary, simulator, x, seed=0, data_features=None)
    assert result.rejected
    assert result.p_value == pytest.approx(1 / 501)
    assert result.statistic > result.critical_value > 0


def test_a_single_observation_works_and_matches_a_batch_of_one():
    simulator = GaussianMeans(n_obs=N_OBS)
    x = simulator.simulate(simulator.sample_prior(1, seed=5), seed=6)
    single = misspecification_test(sufficient_summary, simulator, x[0], seed=0)
    batch = misspecification_test(sufficient_summary, simulator, x, seed=0)
    assert single.num_observed == batch.num_observed == 1
    assert single.statistic == batch.statistic and single.p_value == batch.p_value
    assert single.null_statistics.shape == (500,)
    assert single.attrs["num_reference"] == 1000 and single.attrs["kernel"] == "imq"


def test_decision_p_value_and_critical_value_agree():
    simulator = GaussianMeans(n_obs=N_OBS)
    truth = GaussianMeans(n_obs=N_OBS, prior_scale=1.8)
    x = truth.simulate(truth.sample_prior(2, seed=7), seed=8)
    for seed in range(5):
        result = misspecification_test(sufficient_summary, simulator, x, num_null=99, seed=seed)
        # Two blocks: the null of the combined statistic is the one the decision uses.
        assert result.attrs["blocks"] == ["summary", "data"]
        null = result.null_statistics.double()
        exceed = int((null >= result.statistic).sum())
        assert result.p_value == pytest.approx((1 + exceed) / 100)
        assert result.rejected == (result.p_value <= 0.05)
        assert result.rejected == (result.statistic > result.critical_value)


def test_vectorised_null_equals_the_direct_mmd():
    simulator = GaussianMeans(n_obs=N_OBS)
    null, _ = SimulatedNull.build(
        sufficient_summary, simulator, 4, num_reference=50, num_null=20, seed=0
    )
    groups = torch.randn(3, 4, 2, dtype=torch.float64) * 1.5
    direct = torch.stack([mmd_squared(g, null.reference) for g in groups]).sqrt()
    torch.testing.assert_close(null.statistics(groups), direct)
    x = simulator.simulate(simulator.sample_prior(4, seed=2), seed=3)
    for kernel in ("imq", "gaussian"):
        a, b = (
            misspecification_test(sufficient_summary, simulator, x, 200, 99, kernel=kernel, seed=1)
            for _ in range(2)
        )
        assert a.statistic == b.statistic  # seeded: reproducible
        torch.testing.assert_close(a.null_statistics, b.null_statistics)
        assert a.attrs["kernel"] == kernel


def test_shape_mismatch_is_an_error():
    simulator = GaussianMeans(n_obs=N_OBS)
    with pytest.raises(ValueError, match=r"observation_shape \(10, 2\)"):
        misspecification_test(sufficient_summary, simulator, torch.zeros(2, 5, 2))


def test_num_null_too_small_for_alpha_is_an_error():
    simulator = GaussianMeans(n_obs=N_OBS)
    x = torch.zeros(1, N_OBS, 2)
    with pytest.raises(ValueError, match=r"num_null >= 19"):
        misspecification_test(sufficient_summary, simulator, x, num_null=18)
    with pytest.raises(ValueError, match=r"num_null >= 99"):
        misspecification_test(sufficient_summary, simulator, x, num_null=98, alpha=0.01)
    result = misspecification_test(sufficient_summary, simulator, x, num_null=19, seed=0)
    assert result.p_value >= 1 / 20


def test_summary_without_embedding_net_is_an_error():
    simulator = GaussianMeans(n_obs=1)
    theta = simulator.sample_prior(200, seed=0)
    x = simulator.simulate(theta, seed=1)[:, 0]
    trainer = NPE(simulator.prior, tracker=NullTracker(), show_progress_bars=False)
    x_o = torch.zeros(1, 1, 2)
    with pytest.raises(RuntimeError, match="not been trained"):
        misspecification_test(trainer, simulator, x_o)
    trainer.append_simulations(theta, x).train(max_num_epochs=1)
    with pytest.raises(ValueError, match="no embedding"):
        misspecification_test(trainer, simulator, x_o)
    with pytest.raises(ValueError, match="no embedding"):
        misspecification_test(trainer.build_posterior(), simulator, x_o)
    with pytest.raises(TypeError, match="callable"):
        misspecification_test(42, simulator, x_o)
