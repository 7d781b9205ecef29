"""Study end to end: reproducibility, result round trip, ArviZ and netCDF, errors."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
import xarray as xr
from study_toys import GaussianToy, NaNToy, WrongShapeToy

import sbiplug
from sbiplug import Study, StudyResult, UnknownNameError, arviz_figures
from sbiplug.inference_data import arviz
from sbiplug.sbi_internals import trained_network
from sbiplug.simulation import InvalidSimulationWarning
from sbiplug.simulator import SimulatorOutputError
from sbiplug.study import StudyError

TINY_NPE = {"hidden_features": 16, "num_transforms": 2}
TINY_TRAIN = {"max_num_epochs": 3, "training_batch_size": 100}
TINY_DIAGNOSTICS = {
    "sbc": {"num_sbc_runs": 30, "num_posterior_samples": 30, "c2st": False},
    "c2st_reference": {"num_samples": 100},
}


def _two_moons_study(**overrides):
    settings = dict(
        num_simulations=600,
        diagnostics=TINY_DIAGNOSTICS,
        seed=11,
        estimator_options=TINY_NPE,
        train_options=TINY_TRAIN,
        show_progress_bars=False,
    )
    settings.update(overrides)
    return Study("two_moons", "npe", **settings)


@pytest.fixture(scope="module")
def result():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # sbi: "not yet fully converged"
        return _two_moons_study().run(num_observations=2, num_posterior_samples=300)


def test_result_shapes_and_provenance(result):
    assert result.samples.shape == (2, 4, 75, 2)  # independent draws as 4 chains
    assert result.observations.shape == (2, 2) and result.true_parameters.shape == (2, 2)
    assert set(result.diagnostics) == {"sbc", "c2st_reference"}
    assert result.posterior_predictive.shape == (2, 4, 25, 2)
    assert result.log_prob.shape == (2, 4, 75)
    # draws stay inside the prior's support U(-1, 1)^2
    assert result.samples.abs().max() <= 1.0
    tree = result.to_datatree()
    provenance = json.loads(tree.attrs["provenance"])
    assert provenance["seed"] == 11 and provenance["num_invalid_simulations"] == 0
    assert {"sbiplug", "sbi", "torch", "xarray", "arviz"} <= set(provenance["versions"])
    assert tree.attrs["num_simulations"] == 600
    assert tree["prior_sbc"].to_dataset()["theta_1"].shape == (1, 30)  # (chain, draw)
    assert ((tree["prior_sbc"]["theta_1"] >= 0) & (tree["prior_sbc"]["theta_1"] <= 1)).all()


def test_same_seed_same_result_bit_for_bit(result):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        again = _two_moons_study(diagnostics=()).run(num_observations=2, num_posterior_samples=300)
    assert torch.equal(again.samples, result.samples)
    assert torch.equal(again.observations, result.observations)


def test_save_load_round_trip(result, tmp_path):
    folder = result.save(tmp_path / "study")
    loaded = StudyResult.load(folder)
    assert torch.equal(loaded.samples, result.samples)
    assert torch.equal(loaded.true_parameters, result.true_parameters)
    assert torch.equal(loaded.posterior_predictive, result.posterior_predictive)
    assert loaded.diagnostics.keys() == result.diagnostics.keys()
    for name, original in result.diagnostics.items():
        assert loaded.diagnostics[name].scalars() == pytest.approx(original.scalars())
        assert loaded.diagnostics[name].passed == original.passed
    # the reloaded estimator is the trained one: same densities for the same draws
    # (unnormalised: the leakage correction is a Monte Carlo estimate)
    draws, x_o = result.samples[0, 0, :50], result.observations[0]
    before = result.posterior.log_prob(draws, x=x_o, norm_posterior=False)
    after = loaded.posterior.log_prob(draws, x=x_o, norm_posterior=False)
    assert torch.allclose(before, after, atol=1e-5)
    assert loaded.summary().equals(result.summary())


def test_failed_save_leaves_previous_result_intact(result, tmp_path, monkeypatch):
    folder = result.save(tmp_path / "study")
    import sbiplug.persistence

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(sbiplug.persistence, "save_trainer", crash)
    with pytest.raises(OSError, match="disk full"):
        result.save(folder)
    assert [p.name for p in tmp_path.iterdir()] == ["study"]  # no temporary folder left
    assert torch.equal(StudyResult.load(folder, load_estimator=False).samples, result.samples)
    with pytest.raises(FileNotFoundError, match="no saved study result"):
        StudyResult.load(tmp_path / "missing")


def test_netcdf_opens_with_plain_xarray(result, tmp_path):
    folder = result.save(tmp_path / "study")
    with xr.open_datatree(folder / "result.nc") as tree:
        assert {"posterior", "prior", "observed_data", "prior_sbc", "diagnostics"} <= set(
            tree.children
        )
        assert set(tree["diagnostics"].children) == {"sbc", "c2st_reference"}
    with xr.open_dataset(folder / "result.nc", group="posterior") as posterior:
        assert posterior["theta_1"].dims == ("chain", "draw", "observation")
        np.testing.assert_array_equal(
            posterior["theta_2"].values[0, :, 1], result.samples[1, 0, :, 1]
        )


def test_arviz_accepts_the_result(result):
    az = arviz()
    data = result.to_arviz()
    summary = az.summary(data, kind="stats")
    assert len(summary) == 4  # two parameters of two observations
    assert {"mean", "sd"} <= set(summary.columns)
    figure = arviz_figures.plot_pair(result.to_datatree(), ["theta_1", "theta_2"], observation=0)
    assert figure.axes
    figure = arviz_figures.plot_ecdf_pit(result.to_datatree(), ["theta_1"])
    assert figure.axes[0].get_lines()
    table = result.summary(observation=1)
    assert list(table.index) == ["theta_1", "theta_2"]
    assert (table["r_hat"] < 1.05).all()  # four chains of independent draws


def test_plots_return_figures_and_write_pngs(result, tmp_path):
    from matplotlib.figure import Figure

    assert isinstance(result.plot_pair(), Figure)
    sbc_figure = result.plot_sbc()
    assert isinstance(sbc_figure, Figure)
    # the simultaneous 95% band of an ECDF of n uniform draws is close to the KS band 1.36/sqrt(n)
    from matplotlib.collections import PolyCollection

    (fill,) = [c for c in sbc_figure.axes[0].collections if isinstance(c, PolyCollection)]
    band = fill.get_paths()[0].vertices[:, 1]
    ks_half_width = 1.358 / np.sqrt(30)
    # (n = 30: the ECDF moves in steps of 1/30, which widens the band by up to one step)
    assert 0.75 * ks_half_width < band.max() < ks_half_width + 1 / 30
    assert isinstance(result.plot_diagnostic("c2st_reference"), Figure)
    paths = result.save_figures(tmp_path / "figures")
    assert {p.name for p in paths} == {
        "posterior_pair.png",
        "sbc_ecdf.png",
        "diagnostic_sbc.png",
        "diagnostic_c2st_reference.png",
    }
    assert all(p.stat().st_size > 1000 for p in paths)


def test_nle_keeps_four_chains_for_rhat_and_ess():
    study = Study(
        GaussianToy(),
        "nle",
        num_simulations=500,
        seed=2,
        estimator_options={"hidden_features": 16, "num_transforms": 2},
        train_options=TINY_TRAIN,
        posterior_options={
            "mcmc_method": "slice_np_vectorized",
            "mcmc_parameters": {
                "num_chains": 4,
                "warmup_steps": 20,
                "thin": 1,
                "init_strategy": "resample",
                "init_strategy_parameters": {"num_candidate_samples": 1000},
            },
        },
        show_progress_bars=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", FutureWarning)  # sbi prefers posterior_parameters objects
        result = study.run(num_posterior_samples=240, num_predictive_draws=0)
    assert result.samples.shape == (1, 4, 60, 2)
    assert result.log_prob is None  # MCMC potentials are unnormalised
    summary = result.summary()
    assert {"r_hat", "ess_bulk", "ess_tail"} <= set(summary.columns)
    assert np.isfinite(summary["r_hat"]).all() and (summary["ess_bulk"] > 0).all()
    # four chains of 60 slice-sampling draws of a 2-D Gaussian-like posterior mix well
    assert (summary["r_hat"] < 1.1).all()


def test_function_simulator_and_invalid_rows_are_recorded():
    prior = torch.distributions.MultivariateNormal(torch.zeros(2), torch.eye(2))

    def noisy(theta):
        return theta + 0.5 * torch.randn_like(theta)

    def factory(prior, **options):
        from sbi.inference import NPE

        from sbiplug.toolkit import NullTracker

        return NPE(prior, density_estimator="mdn", tracker=NullTracker(), show_progress_bars=False)

    study = Study(
        (prior, noisy),
        factory,
        num_simulations=300,
        seed=0,
        train_options=TINY_TRAIN,
        show_progress_bars=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        result = study.run(observations=torch.zeros(2), num_posterior_samples=50)
    assert result.parameter_names == ["theta_1", "theta_2"]
    assert result.true_parameters is None and "constant_data" not in result.to_datatree().children

    nan_study = Study(
        NaNToy(),
        "npe",
        num_simulations=300,
        seed=0,
        estimator_options=TINY_NPE,
        train_options=TINY_TRAIN,
        show_progress_bars=False,
    )
    with (
        pytest.warns(InvalidSimulationWarning, match="of 300 simulations"),
        warnings.catch_warnings(),
    ):
        warnings.filterwarnings("ignore", message=".*converged.*")
        nan_result = nan_study.run(num_posterior_samples=50, num_predictive_draws=0)
    count = nan_result.to_datatree().attrs["num_invalid_simulations"]
    assert 0 < count == nan_result.num_invalid_simulations < 300


def test_errors_come_before_any_simulation():
    with pytest.raises(UnknownNameError, match="did you mean 'two_moons'"):
        Study("two_moon", "npe")
    with pytest.raises(UnknownNameError, match="unknown estimator 'nope'"):
        Study("two_moons", "nope")
    with pytest.raises(UnknownNameError, match="unknown diagnostic"):
        Study("two_moons", "npe", diagnostics=["sbcc"])
    wrong = WrongShapeToy()
    with pytest.raises(SimulatorOutputError, match=r"dry run.*\(2, 3\); expected \(2, 2\)"):
        Study(wrong, "npe", num_simulations=10_000)
    assert wrong.rows_simulated == 2
    with pytest.raises(StudyError, match="hidden_featurez"):
        Study(GaussianToy(), "npe", estimator_options={"hidden_featurez": 3})
    with pytest.raises(StudyError, match="density_estimator 'flowy'"):
        Study(GaussianToy(), "npe", estimator_options={"density_estimator": "flowy"})
    with pytest.raises(StudyError, match=r"train_options do not fit train.*max_epochs"):
        Study(GaussianToy(), "npe", train_options={"max_epochs": 3})
    with pytest.raises(StudyError, match=r"sbc.*alpha"):
        Study(GaussianToy(), "npe", diagnostics={"sbc": {"alpha": 2.0}})
    with pytest.raises(StudyError, match="num_simulations must be a positive int"):
        Study(GaussianToy(), "npe", num_simulations="many")
    study = Study(GaussianToy(), "npe", num_simulations=50, show_progress_bars=False)
    with pytest.raises(StudyError, match=r"observations must have shape \(n, 2\)"):
        study.run(observations=torch.zeros(3, 3))
    with pytest.raises(StudyError, match=r"true_parameters must have shape \(n, 2\)"):
        study.run(true_parameters=torch.zeros(4))


class _PosteriorMeanGap(sbiplug.Diagnostic):
    """Distance between the posterior mean and the reference posterior mean of observation 0."""

    name = "mean_gap"

    def run(self, context):
        reference = context.simulator.reference_posterior(context.observations[0], 2000, seed=0)
        gap = float((context.posterior_samples[0].mean(0) - reference.mean(0)).norm())
        return sbiplug.DiagnosticResult(name=self.name, statistic=gap, passed=gap < 0.5)

    def plot(self, result, ax=None):
        import matplotlib.pyplot as plt

        figure, ax = plt.subplots() if ax is None else (ax.get_figure(), ax)
        ax.bar([0], [result.statistic])
        return figure


class _SummaryNorm(_PosteriorMeanGap):
    """Norm of the learned summary of observation 0."""

    name = "summary_norm"

    def run(self, context):
        embedding = trained_network(context.estimator).embedding_net
        norm = float(embedding(context.observations[:1]).norm())
        return sbiplug.DiagnosticResult(name=self.name, statistic=norm)


class _AutomaticDiagnosticPlugin:
    @sbiplug.hookimpl
    def register_diagnostics(self):
        yield sbiplug.DiagnosticSpec(
            name="mean_gap",
            factory=_PosteriorMeanGap,
            requires=("reference_posterior",),
            automatic=True,
        )
        yield sbiplug.DiagnosticSpec(
            name="summary_norm", factory=_SummaryNorm, requires=("embedding_net",), automatic=True
        )


def test_automatic_diagnostics_run_when_their_requirements_are_met(register_plugin):
    assert register_plugin(_AutomaticDiagnosticPlugin()).status == "loaded"
    settings = dict(
        num_simulations=300,
        seed=0,
        estimator_options=TINY_NPE,
        train_options=TINY_TRAIN,
        show_progress_bars=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        result = Study(GaussianToy(), "npe", **settings).run(num_posterior_samples=100)
        assert set(result.diagnostics) == {"mean_gap"}  # sbi's z-scoring is no summary net
        assert result.diagnostics["mean_gap"].statistic >= 0
        embedded = Study(
            GaussianToy(),
            "npe",
            **{
                **settings,
                "estimator_options": {**TINY_NPE, "embedding_net": torch.nn.Linear(2, 2)},
            },
        ).run(num_posterior_samples=100)
        assert set(embedded.diagnostics) == {"mean_gap", "summary_norm"}
        # a simulator without a reference posterior: the automatic diagnostic stays out
        prior = torch.distributions.MultivariateNormal(torch.zeros(2), torch.eye(2))
        plain = Study((prior, lambda theta: theta + torch.randn_like(theta)), "npe", **settings)
        assert plain.run(num_posterior_samples=100).diagnostics == {}
        # asked for by name, the unmet requirement is an error before any work
        with pytest.raises(StudyError, match="requires reference_posterior"):
            Study((prior, lambda theta: theta), "npe", diagnostics=["mean_gap"], **settings).run()
