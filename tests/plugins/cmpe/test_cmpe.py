"""CMPE as an sbi estimator: accuracy, sbi utilities, batching, seeds, persistence, errors."""

from __future__ import annotations

import warnings

import pytest
import torch
from sbi.diagnostics import run_sbc, run_tarp
from sbi.inference.posteriors import DirectPosterior
from sbi.utils import BoxUniform
from sbi.utils.metrics import c2st

import sbiplug
from sbiplug.sbi_internals import trained_network
from sbiplug_cmpe import (
    CMPE,
    CMPEPosterior,
    ConsistencyEstimator,
    LowAcceptanceWarning,
    NoDensityError,
)

ESTIMATOR_OPTIONS = {"hidden_features": 64, "num_blocks": 2}  # as in conftest.trained

# A classifier cannot beat chance by more than a few percent on 2 x 1000 draws of the same
# law (sd of C2ST about 0.015); a consistency model with 10 steps after 800 optimiser steps is
# close to the analytic Gaussian, so 0.6 leaves room for training noise but fails a posterior
# that is off by a fraction of its width (a shift of 0.5 sd already gives C2ST ~0.6).
C2ST_BOUND = 0.6


def test_plugin_registers_cmpe():
    # that plugin.py imports no torch is checked for every plugin in tests/platform/plugins
    spec = sbiplug.estimators()["cmpe"]
    assert spec.has_density is False and spec.plugin == "cmpe"


def test_make_estimator_builds_an_sbi_trainer():
    from sbi.inference.trainers.npe.npe_base import PosteriorEstimatorTrainer

    prior = sbiplug.make_simulator("gaussian_linear", dim=2).prior
    trainer = sbiplug.make_estimator("cmpe", prior, steps=2)
    assert isinstance(trainer, CMPE) and isinstance(trainer, PosteriorEstimatorTrainer)
    assert trainer.steps == 2


def test_accuracy_against_analytic_posterior(trained):
    simulator, _, posterior = trained
    assert isinstance(posterior, CMPEPosterior) and isinstance(posterior, DirectPosterior)
    torch.manual_seed(1)
    x_o = simulator.simulate(simulator.prior.sample((2,)), seed=2)
    for i, x in enumerate(x_o):
        samples = posterior.sample((1000,), x=x)
        reference = simulator.reference_posterior(x, 1000, seed=3 + i)
        assert samples.shape == (1000, 2)
        score = c2st(samples, reference, classifier_kwargs={"n_estimators": 30, "n_jobs": 1})
        assert float(score) < C2ST_BOUND


def test_default_x_and_steps_override(trained):
    simulator, trainer, _ = trained
    posterior = trainer.build_posterior(steps=2)
    assert posterior.steps == 2
    x_o = simulator.simulate(torch.zeros(1, 2), seed=4)
    posterior.set_default_x(x_o)
    torch.manual_seed(0)
    samples = posterior.sample((500,))
    # analytic posterior mean x/2, sd sqrt(0.05): mean within 5 MC standard errors (+ bias room)
    error = (samples.mean(0) - x_o[0] / 2).abs()
    assert torch.all(error < 5 * 0.05**0.5 / 500**0.5 + 0.05)


def test_run_sbc_and_run_tarp_accept_the_posterior(trained):
    simulator, _, posterior = trained
    torch.manual_seed(5)
    theta = simulator.prior.sample((200,))
    x = simulator.simulate(theta, seed=6)
    ranks, dap_samples = run_sbc(theta, x, posterior, num_posterior_samples=100)
    assert ranks.shape == (200, 2) and dap_samples.shape == (200, 2)
    assert int(ranks.min()) >= 0 and int(ranks.max()) <= 100
    # calibrated ranks are uniform on {0..100}: mean 50, sd of the mean 29 / sqrt(200) ~ 2
    assert torch.all((ranks.float().mean(0) - 50).abs() < 10)
    ecp, alpha = run_tarp(theta, x, posterior, num_posterior_samples=100)
    assert ecp.shape == alpha.shape
    # expected coverage tracks the credibility level for a calibrated posterior
    assert float((ecp - alpha).abs().max()) < 0.2


def test_sample_batched_matches_per_observation_sampling(trained):
    simulator, _, posterior = trained
    x_o = simulator.simulate(torch.tensor([[-0.5, 0.3], [0.0, 0.0], [0.6, -0.4]]), seed=7)
    torch.manual_seed(8)
    batched = posterior.sample_batched((4000,), x=x_o)
    assert batched.shape == (4000, 3, 2)
    for i, x in enumerate(x_o):
        single = posterior.sample((4000,), x=x)
        # two samples of the same law: means agree within 5 standard errors
        standard_error = torch.sqrt((batched[:, i].var(0) + single.var(0)) / 4000)
        assert torch.all((batched[:, i].mean(0) - single.mean(0)).abs() < 5 * standard_error)
        assert torch.allclose(batched[:, i].std(0), single.std(0), rtol=0.1)


def test_sample_batched_embeds_each_observation_once(trained):
    _, _, posterior = trained
    estimator = posterior.posterior_estimator
    calls = []
    handle = estimator.embedding_net.register_forward_hook(
        lambda module, args, output: calls.append(args[0].shape[0])
    )
    try:
        posterior.sample_batched((300,), x=torch.zeros(5, 2))
    finally:
        handle.remove()
    assert calls and all(rows == 5 for rows in calls)


def test_fused_sampler_is_the_multistep_consistency_sampler(trained):
    """The precomputed-grid loop equals Algorithm 1 of Song et al. written out step by step."""
    _, _, posterior = trained
    net = posterior.posterior_estimator
    x = torch.tensor([[0.2, -0.1], [0.5, 0.4]])
    steps, draws = 4, 7
    fused = net.sample((draws,), x, steps=steps, generator=torch.Generator().manual_seed(3))
    noise = torch.randn((steps, draws, 2, 2), generator=torch.Generator().manual_seed(3))
    context = net.embed_condition(x)
    with torch.no_grad():
        theta = None
        for n, level in enumerate(net.sampling_grid(steps).tolist()):
            time = torch.full((draws, 2, 1), level)
            if theta is None:
                theta_t = net.max_time * noise[0]
            else:
                theta_t = theta + (level**2 - net.eps**2) ** 0.5 * noise[n]
            theta = net.consistency_function(theta_t, time, context.expand(draws, 2, -1))
    assert torch.allclose(fused, net.theta_standardize.inverse(theta), atol=1e-5)


def test_same_seed_same_samples(trained):
    _, _, posterior = trained
    x = torch.tensor([0.2, -0.1])
    torch.manual_seed(11)
    first = posterior.sample((100,), x=x)
    torch.manual_seed(11)
    second = posterior.sample((100,), x=x)
    torch.manual_seed(12)
    third = posterior.sample((100,), x=x)
    assert torch.equal(first, second)
    assert not torch.equal(first, third)


def test_log_prob_raises_a_clear_error(trained):
    _, _, posterior = trained
    x = torch.zeros(2)
    for call in (
        lambda: posterior.log_prob(torch.zeros(3, 2), x=x),
        lambda: posterior.posterior_estimator.log_prob(torch.zeros(1, 3, 2), torch.zeros(3, 2)),
        lambda: posterior.map(x=x),
    ):
        with pytest.raises(NoDensityError, match="CMPE") as error:
            call()
        assert "SBC" in str(error.value) and "TARP" in str(error.value)


def test_prior_support_is_respected_with_low_acceptance_warning(trained):
    _, trainer, _ = trained
    narrow = BoxUniform(-0.05 * torch.ones(2), 0.05 * torch.ones(2))
    posterior = trainer.build_posterior(prior=narrow)
    torch.manual_seed(0)
    with pytest.warns(LowAcceptanceWarning, match="prior support"):
        samples = posterior.sample((200,), x=torch.zeros(2))
    assert samples.abs().max() <= 0.05


def test_curriculum_state_and_sigma_data_live_in_buffers(trained):
    _, trainer, _ = trained
    net = trained_network(trainer)
    assert isinstance(net, ConsistencyEstimator)
    state = net.state_dict()
    for name in ("step", "total_steps", "sigma_data", "theta_standardize.shift"):
        assert name in state
    assert int(state["total_steps"]) == 800 and int(state["step"]) == 800
    # boundary condition f(theta, eps, c) = theta holds by construction
    theta = torch.randn(7, 2)
    context = net.embed_condition(torch.randn(7, 2))
    time = torch.full((7, 1), net.eps)
    assert torch.allclose(net.consistency_function(theta, time, context), theta)


def test_save_load_round_trip(trained, tmp_path):
    from sbiplug.persistence import load_trainer, save_trainer

    simulator, trainer, _ = trained
    save_trainer(trainer, tmp_path / "cmpe", estimator="cmpe", options=ESTIMATOR_OPTIONS)
    loaded = load_trainer(tmp_path / "cmpe", simulator.prior)
    assert isinstance(loaded, CMPE)
    before, after = trained_network(trainer).state_dict(), trained_network(loaded).state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[key], after[key]) for key in before)
    x = torch.tensor([0.3, 0.1])
    torch.manual_seed(3)
    expected = trainer.build_posterior().sample((50,), x=x)
    torch.manual_seed(3)
    assert torch.equal(loaded.build_posterior().sample((50,), x=x), expected)


def test_resume_training_continues_an_interrupted_curriculum(gaussian_task):
    simulator, theta, x = gaussian_task

    class InterruptedCMPE(CMPE):
        interrupt_at: int | None = 30

        def training_losses(self, batch, loss_args):
            step = int(trained_network(self).step)
            self.steps_seen.append(step)
            if step == self.interrupt_at:
                self.interrupt_at = None
                raise KeyboardInterrupt
            return super().training_losses(batch, loss_args)

    torch.manual_seed(0)
    trainer = InterruptedCMPE(simulator.prior, hidden_features=16, num_blocks=1)
    trainer.steps_seen = []
    trainer.append_simulations(theta[:200], x[:200])
    with pytest.raises(KeyboardInterrupt):
        trainer.train(num_steps=50)
    net = trained_network(trainer)
    assert int(net.total_steps) == 50 and int(net.step) == 30
    trainer.train(resume_training=True)
    # K stays fixed and k continues from the stored buffer instead of restarting at 0
    assert trainer.steps_seen == [*range(31), *range(30, 50)]
    assert int(trained_network(trainer).step) == 50
    with pytest.raises(ValueError, match="nothing to resume"):
        trainer.train(resume_training=True)


def test_early_stopping_never_returns_a_network_from_before_the_end(gaussian_task):
    """However the validation loss behaves, the network returned is the one after step K."""
    simulator, theta, x = gaussian_task

    class WorseningCMPE(CMPE):
        def validation_losses(self, batch, loss_args):
            # A validation loss that only gets worse (and ends non-finite) would make sbi's
            # loop restore an earlier best network if CMPE let it choose.
            net = trained_network(self)
            value = float("nan") if int(net.step) == int(net.total_steps) else float(net.step)
            return torch.full((len(batch[0]),), value)

        def train_epoch(self, *args, **kwargs):
            loss = super().train_epoch(*args, **kwargs)
            self.final_state = {k: v.clone() for k, v in trained_network(self).state_dict().items()}
            return loss

    torch.manual_seed(0)
    trainer = WorseningCMPE(simulator.prior, hidden_features=16, num_blocks=1)
    returned = trainer.append_simulations(theta[:300], x[:300]).train(num_steps=40)
    assert int(returned.step) == int(returned.total_steps) == 40
    state = returned.state_dict()
    assert all(torch.equal(state[key], value) for key, value in trainer.final_state.items())
    with pytest.raises(ValueError, match="stop_after_epochs"):
        trainer.train(stop_after_epochs=20)


def test_training_length_defaults_to_the_documented_formula(gaussian_task):
    from sbiplug_cmpe.training import (
        default_batch_size,
        default_learning_rate,
        default_num_steps,
    )

    assert default_num_steps(1) == 1000 and default_num_steps(100) == 2000
    assert default_num_steps(1000) == 20_000 == default_num_steps(1001) - 10
    # Above 1k the rows processed grow as sqrt(n) and the batch grows to 512 (steps shrink).
    assert default_batch_size(1000) == 128 and default_batch_size(10_000) == 512
    assert default_num_steps(10_000) == round(128 * 2000 * 1000**0.5 / 512)
    assert default_num_steps(10_000, batch_size=128) == round(2000 * 1000**0.5)
    assert default_learning_rate(512) == pytest.approx(2e-3)
    simulator, theta, x = gaussian_task
    trainer = CMPE(simulator.prior, hidden_features=8, num_blocks=1)
    trainer.append_simulations(theta[:100], x[:100])
    trainer.train(max_num_epochs=2, training_batch_size=32)
    # 98 training rows (2% validation) in batches of 32: 3 steps per pass
    assert int(trained_network(trainer).total_steps) == 2 * 3


def test_embedding_net_and_summary_loss_are_trained_jointly(gaussian_task):
    simulator, theta, x = gaussian_task
    shapes = []

    def summary_loss(summary: torch.Tensor) -> torch.Tensor:
        shapes.append(tuple(summary.shape))
        return summary.square().mean()

    def trained_embedding(weight: float) -> torch.nn.Module:
        torch.manual_seed(0)
        embedding = torch.nn.Linear(2, 3)
        trainer = CMPE(
            simulator.prior,
            hidden_features=16,
            num_blocks=1,
            embedding_net=embedding,
            summary_loss=summary_loss,
            summary_loss_weight=weight,
        )
        trainer.append_simulations(theta[:300], x[:300]).train(
            max_num_epochs=4, training_batch_size=64, learning_rate=1e-2
        )
        return trained_network(trainer).embedding_net

    torch.manual_seed(0)
    initial_weight = torch.nn.Linear(2, 3).weight.detach().clone()
    free = trained_embedding(0.0)
    penalised = trained_embedding(100.0)
    assert (64, 3) in shapes
    assert not torch.equal(free[1].weight, initial_weight)  # index 0 is the z-scoring
    probe = torch.randn(100, 2)
    with torch.no_grad():
        assert penalised(probe).square().mean() < 0.75 * free(probe).square().mean()


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"steps": 0}, "steps"),
        ({"s0": 20, "s1": 10}, "s1"),
        ({"eps": 1.0, "max_time": 1.0}, "eps"),
        ({"eps": 0.0}, "eps"),
        ({"dropout": 1.5}, "dropout"),
    ],
)
def test_bad_options_fail_before_training(options, match):
    prior = BoxUniform(-torch.ones(2), torch.ones(2))
    with pytest.raises(ValueError, match=match):
        CMPE(prior, **options)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"num_steps": 0}, "num_steps"),
        ({"num_steps": 10, "max_num_epochs": 2}, "not both"),
        ({"training_batch_size": 0}, "training_batch_size"),
        ({"learning_rate": -1.0}, "learning_rate"),
        ({"validation_fraction": 0.0}, "validation_fraction"),
        ({"resume_training": True}, "resume"),
    ],
)
def test_bad_training_options_fail_before_training(gaussian_task, options, match):
    simulator, theta, x = gaussian_task
    trainer = CMPE(simulator.prior).append_simulations(theta[:50], x[:50])
    with pytest.raises(ValueError, match=match):
        trainer.train(**options)
    assert trained_network(trainer) is None


def test_bad_simulations_and_posterior_options_fail_early(trained):
    _, trainer, _ = trained
    prior = BoxUniform(-torch.ones(2), torch.ones(2))
    with pytest.raises(ValueError, match="same number of rows"):
        CMPE(prior).append_simulations(torch.zeros(10, 2), torch.zeros(9, 2))
    with pytest.raises(ValueError, match="steps"):
        trainer.build_posterior(steps=0)
    with pytest.raises(RuntimeError, match="shape"):  # sbi's check, before any sampling
        trainer.build_posterior().sample((5,), x=torch.zeros(3))
    with pytest.raises(ValueError, match="direct"):
        trainer.build_posterior(sample_with="mcmc")
    with pytest.raises(RuntimeError, match="train"):
        CMPE(prior).build_posterior()


def test_training_on_the_device_option_moves_everything(gaussian_task):
    """device='cpu' explicitly: buffers, parameters and samples share the training device."""
    simulator, theta, x = gaussian_task
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = CMPE(simulator.prior, device="cpu", hidden_features=8, num_blocks=1)
        trainer.append_simulations(theta[:100], x[:100]).train(max_num_epochs=1)
    devices = {tensor.device.type for tensor in trained_network(trainer).state_dict().values()}
    assert devices == {"cpu"}
    assert trainer.build_posterior().sample((3,), x=x[0]).device.type == "cpu"


def test_sbiplug_conformance_kit_accepts_cmpe():
    from sbiplug.testing import check_estimator

    report = check_estimator(
        "cmpe",
        estimator_options={"hidden_features": 16, "num_blocks": 1},
        train_options={"max_num_epochs": 3},
    )
    assert report["sample_shape"] == (20, 2)
    assert report["log_prob_mean"] is None  # has_density=False: no log_prob is asked for
    assert report["save_load_checked"]


def test_study_runs_cmpe_and_restores_it_from_saved_results(tmp_path):
    from sbiplug.results import StudyResult

    study = sbiplug.Study(
        simulator="gaussian_linear",
        simulator_options={"dim": 2},
        estimator="cmpe",
        estimator_options={"hidden_features": 16, "num_blocks": 1},
        train_options={"max_num_epochs": 3},
        num_simulations=200,
        seed=0,
        show_progress_bars=False,
    )
    result = study.run(num_observations=2, num_posterior_samples=50, num_predictive_draws=0)
    result.save(tmp_path / "study")
    loaded = StudyResult.load(tmp_path / "study")
    assert isinstance(loaded.estimator, CMPE)
    x = torch.tensor([0.1, -0.2])
    torch.manual_seed(9)
    expected = result.estimator.build_posterior().sample((30,), x=x)
    torch.manual_seed(9)
    assert torch.equal(loaded.estimator.build_posterior().sample((30,), x=x), expected)


def test_sampling_in_training_mode_takes_the_unfused_path_to_the_same_draws(trained):
    """The fused pass folds biases into its terms; a network left in training mode (where
    dropout lives) must not mix those terms with the plain layers."""
    from copy import deepcopy

    _, _, posterior = trained
    net = deepcopy(posterior.posterior_estimator)
    for module in net.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    x = torch.tensor([[0.2, -0.1], [0.5, 0.4]])
    net.eval()
    fused = net.sample((50,), x, generator=torch.Generator().manual_seed(5))
    net.train()
    plain = net.sample((50,), x, generator=torch.Generator().manual_seed(5))
    assert torch.allclose(fused, plain, atol=1e-5)
