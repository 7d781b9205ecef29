"""The residual block for vectors and time series: calibrated under H0, sees the noise's shape."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import binom
from torch.distributions import Independent, Normal

from sbiplug import Simulator
from sbiplug.sbi_internals import trained_network
from sbiplug_misspec import NPEMMD, Misspecified, misspecification_test
from sbiplug_misspec.hypothesis_test import SimulatedNull
from sbiplug_misspec.residuals import PredictiveResiduals


class _Trend(Simulator):
    """A noisy line on 10 time points: level and slope, unit Gaussian noise."""

    name = "trend"
    parameter_names = ("level", "slope")
    observation_shape = (10,)

    @property
    def prior(self):
        return Independent(Normal(torch.zeros(2), torch.ones(2)), 1)

    def _simulate(self, theta: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        time = torch.linspace(0.0, 1.0, 10)
        noise = torch.as_tensor(rng.standard_normal((len(theta), 10)), dtype=torch.float32)
        return theta[:, :1] + 2.0 * theta[:, 1:] * time + noise


@pytest.fixture(scope="module")
def trend() -> _Trend:
    return _Trend()


@pytest.fixture(scope="module")
def trend_trainer(trend) -> NPEMMD:
    """npe_mmd at its defaults on the trend model (small budget)."""
    theta = trend.sample_prior(1500, seed=0)
    x = trend.simulate(theta, seed=1)
    torch.manual_seed(0)
    trainer = NPEMMD(trend.prior, show_progress_bars=False)
    trainer.append_simulations(theta, x).train(max_num_epochs=15, training_batch_size=100)
    return trainer


def test_residual_features_are_finite_and_named(trend, trend_trainer):
    features = PredictiveResiduals(trained_network(trend_trainer), trend)
    x = trend.simulate(trend.sample_prior(30, seed=2), seed=3)
    values = features(x)
    assert values.shape == (30, 7) and values.dtype == torch.float64
    assert torch.isfinite(values).all() and len(features.names) == 7
    # Well-specified residuals at a MAP fit of 2 parameters to 10 points: mean square near
    # 1 - 2/10 (log -0.2, sd about 0.45 per vector), lag-1 correlation near -0.1.
    assert abs(float(values[:, 0].median()) + 0.2) < 0.4 and abs(float(values[:, 5].mean())) < 0.25


def test_vectors_get_a_residual_block_and_the_test_stays_calibrated(trend, trend_trainer):
    x_two = trend.simulate(trend.sample_prior(2, seed=4), seed=5)
    sizes = {"num_reference": 100, "num_null": 19, "seed": 0}
    result = misspecification_test(trend_trainer, trend, x_two, **sizes)
    assert result.attrs["blocks"] == ["summary", "data", "residual"]
    # A plain callable summary has no posterior, so no residual block.
    plain = misspecification_test(lambda x: x[:, :2], trend, x_two, **sizes)
    assert plain.attrs["blocks"] == ["summary", "data"]
    rejections = 0
    for j in range(2):  # default sizes (M = 1000, B = 500), 2 nulls x 100 groups of N = 5
        null, _ = SimulatedNull.build(trend_trainer, trend, 5, seed=200 + j)
        x = trend.simulate(trend.sample_prior(500, seed=30 + j), seed=40 + j)
        features = [f.reshape(100, 5, -1) for f in null.features(x)]
        rejections += int((null.p_values(null.statistics(features)) <= 0.05).sum())
    # Exact test: size floor(0.05 · 501) / 501 = 0.048; binomial tolerance, 1e-3 tails.
    assert binom.ppf(1e-3, 200, 0.048) <= rejections <= binom.isf(1e-3, 200, 0.048)


@pytest.mark.parametrize(("kind", "strength"), [("heavy_tails", 0.5), ("scale", 1.0)])
def test_default_detects_noise_misspecification_of_a_time_series(
    trend, trend_trainer, kind, strength
):
    truth = Misspecified(trend, kind, strength)
    x = truth.simulate(truth.sample_prior(100, seed=6), seed=7)
    null, _ = SimulatedNull.build(trend_trainer, trend, 5, num_null=199, seed=1)
    features = [f.reshape(20, 5, -1) for f in null.features(x)]
    statistics = null.statistics(features)
    # Under H0 1 of 20 rejections is expected; P(>= 15 | p = 0.05) < 1e-14.
    assert int((null.p_values(statistics) <= 0.05).sum()) >= 15
    # It is the residual block that sees it.
    block = null.block_names.index("residual")
    residual_p = (1 + (null.block_null[None, :, block] >= statistics[:, None, block]).sum(1)) / 200
    assert int((residual_p <= 0.05).sum()) >= 15
