"""npe_mmd: the regulariser shapes the summaries, inference still works, the test uses the net."""

from __future__ import annotations

import pytest
import torch
from scipy.stats import binom

import sbiplug
from sbiplug_misspec import NPEMMD, DeepSetEmbedding, GaussianMeans, misspecification_test
from sbiplug_misspec.hypothesis_test import summarise
from sbiplug_misspec.regularizer import mmd_squared


def _mmd_to_target(trainer: NPEMMD, simulator: GaussianMeans, scale: tuple[float, ...]) -> float:
    """MMD² between 1000 summaries and 1000 draws from N(0, diag(scale)²)."""
    x = simulator.simulate(simulator.sample_prior(1000, seed=11), seed=12)
    summaries = summarise(trainer.embedding_net, x)
    normal = torch.randn(
        summaries.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0)
    )
    return float(mmd_squared(summaries, normal * torch.tensor(scale, dtype=torch.float64)))


def test_regulariser_moves_summaries_towards_a_standard_normal(
    simulator, regularised_trainer, unregularised_trainer
):
    standard = (1.0,) * 4
    assert regularised_trainer.summary_regularizer.target_scale == standard
    regularised = _mmd_to_target(regularised_trainer, simulator, standard)
    unregularised = _mmd_to_target(unregularised_trainer, simulator, standard)
    # Same seed, data and budget; only the penalty differs.
    assert regularised < 0.5 * unregularised
    assert regularised < 0.5


def test_centred_summaries_follow_their_target_with_a_narrower_shape_block(
    simulator, centred_trainer, centred_unregularised_trainer
):
    # Default for set-valued x: the set mean (2 summaries) and one shape summary per coordinate.
    target = (1.0,) * 2 + (0.5,) * 2
    assert centred_trainer.summary_regularizer.target_scale == target
    regularised = _mmd_to_target(centred_trainer, simulator, target)
    unregularised = _mmd_to_target(centred_unregularised_trainer, simulator, target)
    # The centred net starts near its target even without the penalty (a whitened set mean and
    # a batch-normalised shape block, 0.106 here); the penalty still removes a share of what
    # is left (0.075), against a floor of about 0.015 for two samples of 1000 from one law.
    assert regularised < 0.8 * unregularised


def _r_squared_of_log_spread(trainer: NPEMMD, simulator: GaussianMeans) -> float:
    """R² of the linear fit of each set's log sample variance on its summaries."""
    x = simulator.simulate(simulator.sample_prior(2000, seed=41), seed=42)
    summaries = summarise(trainer.embedding_net, x)
    log_spread = x.var(dim=1).mean(dim=-1).log().double()[:, None]
    design = torch.cat([summaries, torch.ones(len(x), 1, dtype=torch.float64)], dim=1)
    residual = log_spread - design @ torch.linalg.lstsq(design, log_spread).solution
    return float(1 - residual.var() / log_spread.var())


def test_centred_regularised_summaries_carry_the_spread_and_detect_a_wrong_noise_level(
    simulator, centred_trainer, regularised_trainer
):
    # The posterior needs only the set mean. The centred DeepSet keeps the within-set spread in
    # its shape block (it starts there, and the penalty has no reason to move it); the default
    # mean pooling carries none of it.
    centred = _r_squared_of_log_spread(centred_trainer, simulator)
    default = _r_squared_of_log_spread(regularised_trainer, simulator)
    assert centred > 0.8
    assert default < 0.2
    noisy = GaussianMeans(n_obs=simulator.n_obs, noise_scale=8.0)
    x_bad = noisy.simulate(noisy.sample_prior(20, seed=43), seed=44)

    def rejections(trainer: NPEMMD, data_features: str | None) -> int:
        return sum(
            misspecification_test(
                trainer, simulator, x_bad[r : r + 1], num_reference=200, num_null=99, seed=r,
                data_features=data_features,
            ).rejected
            for r in range(20)
        )  # fmt: skip

    # N = 1, alpha = 0.05: 1 of 20 expected under H0 (P(>= 14) < 1e-12). In summary space
    # alone (the paper's test), mean pooling keeps no spread and cannot see the noise level;
    # the default test's data block does.
    assert rejections(centred_trainer, None) >= 14
    assert rejections(regularised_trainer, None) <= 5
    assert rejections(regularised_trainer, "auto") >= 14


@pytest.mark.parametrize("name", ["regularised_trainer", "centred_trainer"])
def test_regularised_posterior_still_matches_the_analytic_one(simulator, name, request):
    trainer = request.getfixturevalue(name)
    posterior = trainer.build_posterior()
    x = simulator.simulate(simulator.sample_prior(10, seed=21), seed=22)
    errors = []
    for x_o in x:
        draws = posterior.sample((300,), x=x_o, show_progress_bars=False)
        errors.append((draws.mean(0) - x_o.sum(0) / (1 + simulator.n_obs)).square().sum())
    # Prior sd 1, posterior sd 0.30: a posterior that ignored x would be off by ~1.4.
    assert float(torch.stack(errors).mean().sqrt()) < 0.3


def test_test_with_the_trained_network_is_calibrated_and_detects_a_shift(
    simulator, regularised_trainer
):
    replicates, alpha = 150, 0.2
    x = simulator.simulate(simulator.sample_prior(replicates, seed=31), seed=32)
    rejections = sum(
        misspecification_test(
            regularised_trainer, simulator, x[r], num_reference=100, num_null=19, alpha=alpha,
            seed=r,
        ).rejected
        for r in range(replicates)
    )  # fmt: skip
    low, high = binom.ppf(1e-3, replicates, alpha), binom.isf(1e-3, replicates, alpha)
    assert low <= rejections <= high
    shifted = GaussianMeans(n_obs=simulator.n_obs, prior_loc=5.0)
    x_bad = shifted.simulate(shifted.sample_prior(1, seed=33), seed=34)
    posterior = regularised_trainer.build_posterior()
    result = misspecification_test(posterior, simulator, x_bad, seed=0, data_features=None)
    assert result.rejected and result.p_value == pytest.approx(1 / 501)


def test_registered_estimator_takes_any_sbi_head_and_a_summary_dim():
    simulator = GaussianMeans(n_obs=5)
    theta = simulator.sample_prior(200, seed=0)
    x = simulator.simulate(theta, seed=1)
    trainer = sbiplug.make_estimator(
        "npe_mmd", simulator.prior, density_estimator="zuko_nsf", summary_dim=3,
        show_progress_bars=False,
    )  # fmt: skip
    assert isinstance(trainer, NPEMMD) and trainer.mmd_weight == 1.0
    trainer.append_simulations(theta, x).train(max_num_epochs=1)
    assert trainer.embedding_net(x[:7]).shape == (7, 3)
    samples = trainer.build_posterior().sample((11,), x=x[0], show_progress_bars=False)
    assert samples.shape == (11, 2)
    centred = NPEMMD(
        simulator.prior, embedding_pooling="centred", embedding_shape_dim=3,
        embedding_shape_scale=0.3, show_progress_bars=False,
    )  # fmt: skip
    centred.append_simulations(theta, x).train(max_num_epochs=1)
    assert centred.embedding_net(x[:7]).shape == (7, 5)
    assert centred.summary_regularizer.target_scale == (1.0,) * 2 + (0.3,) * 3
    conflicting = NPEMMD(
        simulator.prior, embedding_pooling="centred", summary_dim=6, embedding_shape_dim=3
    )
    with pytest.raises(ValueError, match="summary_dim=6 does not match embedding_shape_dim=3"):
        conflicting.append_simulations(theta, x).train(max_num_epochs=1)


def test_a_user_embedding_net_is_used_and_bad_options_fail():
    simulator = GaussianMeans(n_obs=5)
    net = DeepSetEmbedding(2, 6, hidden_features=8)
    trainer = NPEMMD(simulator.prior, embedding_net=net, show_progress_bars=False)
    theta = simulator.sample_prior(100, seed=0)
    trainer.append_simulations(theta, simulator.simulate(theta, seed=1)).train(max_num_epochs=1)
    assert any(module is net for module in trainer.embedding_net.modules())
    with pytest.raises(TypeError, match="density_estimator"):
        NPEMMD(simulator.prior, density_estimator=lambda theta, x: None)
    with pytest.raises(ValueError, match="summary_dim"):
        NPEMMD(simulator.prior, summary_dim=0)
    with pytest.raises(ValueError, match="embedding_shape_dim must be a positive int"):
        NPEMMD(simulator.prior, embedding_pooling="centred", embedding_shape_dim=0)
    with pytest.raises(RuntimeError, match="train"):
        _ = NPEMMD(simulator.prior).embedding_net
