"""The ``entropic_metrics`` diagnostic: on a trained NPE study, through netCDF, and on a ridge."""

from __future__ import annotations

import math

import matplotlib
import pytest
import torch
from torch.distributions import Independent, Normal

import sbiplug
from sbiplug import DiagnosticContext, DiagnosticResult, StudyResult
from sbiplug.toolkit import DiagnosticInputError
from sbiplug_flowanalysis import EntropicMetricsDiagnostic
from sbiplug_flowanalysis.diagnostic import prior_entropy_per_dimension

matplotlib.use("Agg")

# N(x / 2, 0.05 I) posterior: H_i = 1/2 (1 + log 2 pi) + 1/2 log 0.05 in every direction
EXACT_ENTROPY_PER_DIM = 0.5 * (1 + math.log(2 * math.pi)) + 0.5 * math.log(0.05)


@pytest.fixture(scope="module")
def study_result():
    study = sbiplug.Study(
        simulator="gaussian_linear",
        estimator="npe",
        num_simulations=1000,
        diagnostics={"entropic_metrics": {"num_samples": 1000}},
        seed=0,
        simulator_options={"dim": 2},
        train_options={"max_num_epochs": 20},
        show_progress_bars=False,
    )
    return study.run(num_observations=2, num_posterior_samples=50)


@pytest.mark.filterwarnings("ignore:Maximum number of epochs:UserWarning")
def test_study_diagnostic_recovers_the_gaussian_spectrum_and_round_trips(study_result, tmp_path):
    result = study_result.diagnostics["entropic_metrics"]
    data = result.data
    sizes = {"observation": 2, "latent": 2, "other_latent": 2, "component": 2, "parameter": 2}
    assert data.sizes == sizes
    # the full entropy is rotation invariant: close to the exact posterior's (a short training
    # on 1000 simulations leaves ~0.2 nats of estimation error; Monte Carlo error is ~0.01)
    assert data["entropy"].values == pytest.approx([2 * EXACT_ENTROPY_PER_DIM] * 2, abs=0.25)
    assert (data["total_correlation"].values >= 0).all()
    assert result.passed and (data["effective_dimension"].values == 2).all()
    assert "use all 2 directions" in result.message
    # gaussian_linear's prior N(0, 0.1 I): entropy per dimension in closed form
    expected_prior = 0.5 * (1 + math.log(2 * math.pi)) + 0.5 * math.log(0.1)
    assert data.attrs["prior_entropy_per_dimension"] == pytest.approx(expected_prior, abs=1e-4)

    study_result.save(tmp_path / "study")
    loaded = StudyResult.load(tmp_path / "study").diagnostics["entropic_metrics"]
    assert loaded.message == result.message and loaded.passed == result.passed
    for name in ("spectrum", "principal_spectrum", "mpmi", "total_correlation", "degenerate"):
        assert loaded.data[name].equals(data[name]), name
    figure = loaded.plot()
    assert len(figure.axes) == 3  # spectrum, heat map, colour bar
    again = DiagnosticResult.from_dataset(result.to_dataset())
    assert again.plot(ax=figure.axes[0]) is figure


class _RidgePosterior:
    """A posterior that is a ridge: one direction 100 times narrower (a product theta1 theta2)."""

    def latent_decoder(self, condition):
        def decoder(z):
            along = 1.0 * z[:, :1]
            across = 0.01 * z[:, 1:]
            theta_1 = 1.0 + along - across
            return torch.cat([theta_1, 1.0 / theta_1.clamp_min(0.2) + across], dim=1)

        return decoder, Independent(Normal(torch.zeros(2), 0.3 * torch.ones(2)), 1)


def test_names_the_near_degenerate_direction():
    context = DiagnosticContext(observations=torch.zeros(1, 2), posterior=_RidgePosterior())
    result = EntropicMetricsDiagnostic(num_samples=500).run(context)
    assert not result.passed
    assert "posterior effectively 1-dimensional" in result.message
    assert "direction 2" in result.message
    assert result.data["degenerate"].values.tolist() == [[0, 1]]
    assert result.summary["min_effective_dimension"] == 1.0
    # the narrow principal axis is across the ridge: along grad(theta_1 theta_2) ~ (1, 1)
    axis = result.data["principal_direction"].values[0, 1]
    assert abs(axis @ [0.7071, 0.7071]) > 0.9


def test_bad_options_and_missing_inputs_fail_fast():
    with pytest.raises(ValueError, match="num_samples"):
        EntropicMetricsDiagnostic(num_samples=1)
    with pytest.raises(ValueError, match="degenerate_ratio"):
        EntropicMetricsDiagnostic(degenerate_ratio=1.5)
    with pytest.raises(DiagnosticInputError, match="needs a posterior"):
        EntropicMetricsDiagnostic().run(DiagnosticContext(observations=torch.zeros(1, 2)))
    context = DiagnosticContext(observations=torch.zeros(1, 2), posterior=object())
    with pytest.raises(DiagnosticInputError, match="no decoder"):
        EntropicMetricsDiagnostic().run(context)
    assert isinstance(sbiplug.make_diagnostic("entropic_metrics"), EntropicMetricsDiagnostic)


def test_prior_entropy_closed_form_and_monte_carlo():
    uniform = sbiplug.make_simulator("two_moons").prior  # U(-1, 1)^2
    assert prior_entropy_per_dimension(uniform) == pytest.approx(math.log(2.0), abs=1e-6)

    class NoEntropy:
        event_shape = torch.Size([2])

        def sample(self, shape):
            return torch.rand(*shape, 2) * 2 - 1

        def log_prob(self, theta):
            return torch.full(theta.shape[:1], -2 * math.log(2.0))

        def entropy(self):
            raise NotImplementedError

    assert prior_entropy_per_dimension(NoEntropy()) == pytest.approx(math.log(2.0))
