"""The generic misspecification wrapper: shapes, seeds, batch = row loop, identity at 0, moments."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

import sbiplug
from sbiplug_misspec import GaussianMeans, Misspecified
from sbiplug_misspec.misspecified import MISSPECIFICATIONS


@pytest.fixture(scope="module")
def gaussian() -> GaussianMeans:
    return GaussianMeans(n_obs=50)


def _noise(simulator: Misspecified, num: int = 100) -> np.ndarray:
    theta = simulator.sample_prior(num, seed=1)
    return (simulator.simulate(theta, seed=2) - theta[:, None, :]).reshape(-1).numpy()


@pytest.mark.parametrize("kind", MISSPECIFICATIONS)
def test_shapes_seeds_and_batch_equals_row_loop(gaussian, kind):
    wrapped = Misspecified(gaussian, kind, 0.3)
    theta = wrapped.sample_prior(4, seed=0)
    batch = wrapped.simulate(theta, seed=np.random.default_rng(7))
    rng = np.random.default_rng(7)
    rows = torch.cat([wrapped.simulate(theta[i : i + 1], seed=rng) for i in range(4)])
    assert batch.shape == (4, 50, 2) and batch.dtype == torch.float32
    assert torch.equal(batch, rows)
    assert torch.equal(batch, wrapped.simulate(theta, seed=np.random.default_rng(7)))
    assert not torch.equal(batch, wrapped.simulate(theta, seed=8))


@pytest.mark.parametrize("kind", MISSPECIFICATIONS)
def test_strength_zero_is_the_simulator(gaussian, kind):
    wrapped = Misspecified(gaussian, kind, 0.0)
    theta = wrapped.sample_prior(3, seed=0)
    assert torch.equal(theta, gaussian.sample_prior(3, seed=0))
    assert torch.equal(wrapped.simulate(theta, seed=5), gaussian.simulate(theta, seed=5))
    assert wrapped.is_well_specified


def test_noise_replacements_keep_mean_and_variance(gaussian):
    skewed = _noise(Misspecified(gaussian, "skew", 0.5))
    # 10^4 unit-variance draws: the sample mean's sd is 0.01, the variance's about 0.02.
    assert abs(skewed.mean()) < 0.05 and abs(skewed.var() - 1.0) < 0.08
    assert stats.skew(skewed) > 0.8  # z + 0.5 (|z| - E|z|) has skewness about 1
    bimodal = _noise(Misspecified(gaussian, "bimodal", 0.9))
    assert abs(bimodal.mean()) < 0.05 and abs(bimodal.var() - 1.0) < 0.08
    assert stats.kurtosis(bimodal) < -1.0  # two modes at ±0.9: kurtosis near -1.3
    heavy = _noise(Misspecified(gaussian, "heavy_tails", 0.25))  # Student-t, 4 dof
    assert np.median(np.abs(heavy)) == pytest.approx(stats.t(4).ppf(0.75), rel=0.05)
    scaled = _noise(Misspecified(gaussian, "scale", 1.0))
    assert scaled.std() == pytest.approx(2.0, rel=0.05)


def test_dependence_drift_censoring_and_outliers(gaussian):
    theta = gaussian.sample_prior(100, seed=1)
    x = Misspecified(gaussian, "correlated", 0.6).simulate(theta, seed=2) - theta[:, None, :]
    lag1 = (x[:, 1:] * x[:, :-1]).mean() / x.square().mean()
    assert float(lag1) == pytest.approx(0.6, abs=0.05)
    drifted = Misspecified(gaussian, "drift", 2.0).simulate(theta, seed=2) - theta[:, None, :]
    assert float(drifted[:, -1].mean() - drifted[:, 0].mean()) == pytest.approx(2.0, abs=0.2)
    censored = Misspecified(gaussian, "censor", 0.1).simulate(theta, seed=2) - theta[:, None, :]
    # The cut-off comes from 800 replicate draws per set: within about 0.2 of the true one.
    assert float(censored.max()) < stats.norm.ppf(0.9) + 0.25
    hit = Misspecified(gaussian, "outliers", 0.1).simulate(theta, seed=2) - theta[:, None, :]
    assert float((hit.abs() > 3.5).any(-1).float().mean()) == pytest.approx(0.1, abs=0.02)


def test_prior_kinds_move_the_parameters(gaussian):
    shifted = Misspecified(gaussian, "prior_shift", 2.0).sample_prior(4000, seed=0)
    assert shifted.mean(0).tolist() == pytest.approx([2.0, 2.0], abs=0.1)
    wide = Misspecified(gaussian, "prior_scale", 1.0).sample_prior(4000, seed=0)
    assert wide.std(0).tolist() == pytest.approx([2.0, 2.0], rel=0.05)
    # Bounded priors stay inside their support: the move is in the unconstrained space.
    moons = Misspecified(sbiplug.make_simulator("two_moons"), "prior_shift", 1.0)
    theta = moons.sample_prior(1000, seed=0)
    assert bool((theta.abs() < 1).all()) and float(theta.mean()) > 0.2
    assert moons.simulate(theta[:3], seed=0).shape == (3, 2)


def test_vector_and_time_series_simulators_compose():
    sir = sbiplug.make_simulator("sir")
    wrapped = Misspecified(Misspecified(sir, "scale", 1.0), "outliers", 0.2, num_replicates=4)
    theta = wrapped.sample_prior(3, seed=0)
    x = wrapped.simulate(theta, seed=1)
    assert x.shape == (3, 10) and bool(torch.isfinite(x).all())
    rng = np.random.default_rng(3)
    rows = torch.cat([wrapped.simulate(theta[i : i + 1], seed=rng) for i in range(3)])
    assert torch.equal(rows, wrapped.simulate(theta, seed=np.random.default_rng(3)))


def test_bad_options_fail_clearly(gaussian):
    with pytest.raises(ValueError, match="kind must be one of"):
        Misspecified(gaussian, "tails", 0.5)
    with pytest.raises(ValueError, match="strength"):
        Misspecified(gaussian, "heavy_tails", 1.0)
    with pytest.raises(ValueError, match="strength"):
        Misspecified(gaussian, "scale", -1.0)
    with pytest.raises(TypeError, match="sbiplug Simulator"):
        Misspecified(object(), "scale", 1.0)
