"""The default test on the default npe_mmd: calibrated, sees the noise's shape, explains itself."""

from __future__ import annotations

import matplotlib
import pytest
import torch
from scipy.stats import binom
from torch.distributions import Independent, Normal

from sbiplug import Simulator
from sbiplug_misspec import GaussianMeans, Misspecified, misspecification_test
from sbiplug_misspec.hypothesis_test import SimulatedNull

matplotlib.use("Agg")


def test_false_positive_rate_at_defaults_is_calibrated(defaults_simulator, default_trainer):
    simulator = defaults_simulator
    # Default sizes (M = 1000, B = 500); 4 reference sets and nulls, 100 groups each.
    for size in (1, 5):
        rejections = 0
        for j in range(4):
            null, _ = SimulatedNull.build(default_trainer, simulator, size, seed=100 + j)
            x = simulator.simulate(simulator.sample_prior(100 * size, seed=j), seed=10 + j)
            groups = x.reshape(100, size, *simulator.observation_shape)
            features = [f.reshape(100, size, -1) for f in null.features(x)]
            rejections += int((null.p_values(null.statistics(features)) <= 0.05).sum())
            assert groups.shape[0] == 100
        # Exact test: size floor(0.05 · 501) / 501 = 0.048; binomial tolerance, 1e-3 tails.
        low, high = binom.ppf(1e-3, 400, 0.048), binom.isf(1e-3, 400, 0.048)
        assert low <= rejections <= high, (size, rejections)


@pytest.mark.parametrize("kind", ["heavy_tails", "skew"])
def test_default_detects_heavy_tails_and_skew_with_the_same_mean_and_variance(
    defaults_simulator, default_trainer, kind
):
    # Student-t with 2 dof (same scale), or skewness about 1 at the same mean and variance;
    # N = 5 sets of 30, against one reference set and null at the default sizes.
    simulator = defaults_simulator
    truth = Misspecified(simulator, kind, 0.5)
    x = truth.simulate(truth.sample_prior(100, seed=3), seed=4)
    null, _ = SimulatedNull.build(default_trainer, simulator, 5, seed=0)
    features = [f.reshape(20, 5, -1) for f in null.features(x)]
    statistics = null.statistics(features)
    # Under H0 1 of 20 rejections is expected; P(>= 16 | p = 0.05) < 1e-16.
    assert int((null.p_values(statistics) <= 0.05).sum()) >= 16
    # The summary space alone (the paper's test, the old default) does not see it.
    alone = (1 + (null.block_null[None, :, 0] >= statistics[:, None, 0]).sum(1)) / 501
    assert int((alone <= 0.05).sum()) <= 5


def test_default_posterior_is_as_accurate_as_plain_npe(
    defaults_simulator, default_trainer, default_plain_trainer
):
    simulator = defaults_simulator
    x = simulator.simulate(simulator.sample_prior(50, seed=21), seed=22)

    def rmse(trainer) -> float:
        posterior = trainer.build_posterior()
        errors = [
            (posterior.sample((1000,), x=x_o, show_progress_bars=False).mean(0)
             - x_o.sum(0) / (1 + simulator.n_obs)).square().sum()
            for x_o in x
        ]  # fmt: skip
        return float(torch.stack(errors).mean().sqrt())

    # The bound: within 10% of plain NPE with the same network, plus the Monte Carlo error of
    # 1000 posterior draws (posterior sd 0.18: 0.008 on the 2-D error norm).
    assert rmse(default_trainer) <= 1.10 * rmse(default_plain_trainer) + 0.015


def test_a_rejection_explains_itself(defaults_simulator, default_trainer):
    simulator = defaults_simulator
    truth = Misspecified(simulator, "heavy_tails", 0.5)
    x = truth.simulate(truth.sample_prior(5, seed=5), seed=6)
    result = misspecification_test(default_trainer, simulator, x, num_null=99, seed=0)
    assert result.rejected
    data = result.block("data")
    assert data.p_value <= 0.05 and len(data.feature_names) == data.contributions.shape[0]
    assert float(data.contributions.sum()) == pytest.approx(1.0)
    leading = data.top(1)[0][0]
    assert leading.split("[")[0] in ("log_kurtosis", "log_max_abs_z", "log_sd", "skewness")
    assert "Strongest evidence in the data block" in result.message and leading in result.message
    figure = result.plot()
    assert figure.axes[0].get_title().startswith("data block")
    import matplotlib.pyplot as plt

    _, ax = plt.subplots()
    assert result.plot(ax=ax, block="summary") is ax.figure
    with pytest.raises(KeyError, match="no block"):
        result.block("nope")


def test_prior_shift_is_attributed_to_the_summary_block(defaults_simulator, default_trainer):
    simulator = defaults_simulator
    shifted = GaussianMeans(n_obs=simulator.n_obs, prior_loc=5.0)
    x = shifted.simulate(shifted.sample_prior(2, seed=7), seed=8)
    result = misspecification_test(default_trainer, simulator, x, num_null=99, seed=0)
    assert result.rejected and result.block("summary").p_value == pytest.approx(0.01)
    assert "summary block" in result.message and "prior" in result.message


def test_bad_data_features_fail_before_simulating(defaults_simulator, default_trainer):
    simulator = defaults_simulator
    x = simulator.simulate(simulator.sample_prior(1, seed=0), seed=1)
    with pytest.raises(ValueError, match="data_features must be"):
        misspecification_test(default_trainer, simulator, x, data_features="all")
    with pytest.raises(TypeError, match="data_features must be"):
        misspecification_test(default_trainer, simulator, x, data_features=3)


class _Images(Simulator):
    """1 x 3 x 3 'images' around a scalar: a shape with no default data block."""

    name = "tiny_images"
    parameter_names = ("a",)
    observation_shape = (1, 3, 3)

    @property
    def prior(self):
        return Independent(Normal(torch.zeros(1), torch.ones(1)), 1)

    def _simulate(self, theta, rng):
        noise = torch.as_tensor(rng.standard_normal((len(theta), 1, 3, 3)), dtype=torch.float32)
        return theta[:, :, None, None] + noise


def test_other_shapes_fall_back_to_the_summary_block_and_callables_add_one():
    images = _Images()
    x = images.simulate(images.sample_prior(2, seed=0), seed=1)
    summary = lambda x: x.mean(dim=(1, 2, 3))[:, None]  # noqa: E731
    sizes = {"num_reference": 100, "num_null": 19, "seed": 0}
    alone = misspecification_test(summary, images, x, **sizes)
    assert alone.attrs["blocks"] == ["summary"] and len(alone.blocks) == 1
    corner = misspecification_test(summary, images, x, data_features=lambda x: x[:, 0, 0], **sizes)
    assert corner.attrs["blocks"] == ["summary", "data"]
    assert corner.block("data").feature_names == ["feature[0]", "feature[1]", "feature[2]"]
