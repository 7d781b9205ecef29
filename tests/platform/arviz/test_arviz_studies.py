"""Trained studies in ArviZ: NPE draws as four independent chains, NLE (MCMC) with the
estimator's own log likelihood, every ``result.plot_*`` through ArviZ's functions, old results."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
import xarray as xr
from matplotlib.figure import Figure

import sbiplug
from sbiplug import arviz_figures
from sbiplug import inference_data as adapter
from sbiplug.result_layout import LAYOUT_VERSION, upgrade
from sbiplug.results import ResultFileError

TINY = {
    "num_simulations": 300,
    "estimator_options": {"hidden_features": 16, "num_transforms": 1},
    "show_progress_bars": False,
}


@pytest.fixture(scope="module")
def npe():
    study = sbiplug.Study(
        "gaussian_linear",
        "npe",
        simulator_options={"dim": 2},
        seed=3,
        train_options={"max_num_epochs": 30},
        diagnostics={"sbc": {"num_sbc_runs": 40, "num_posterior_samples": 20, "c2st": False}},
        **TINY,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return study.run(num_observations=2, num_posterior_samples=400, num_predictive_draws=100)


@pytest.fixture(scope="module")
def nle():
    study = sbiplug.Study(
        "gaussian_linear",
        "nle",
        simulator_options={"dim": 2},
        seed=4,
        train_options={"max_num_epochs": 30},
        posterior_options={
            "mcmc_method": "slice_np_vectorized",
            "mcmc_parameters": {"num_chains": 4, "warmup_steps": 20, "thin": 1},
        },
        **TINY,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", FutureWarning)
        return study.run(num_posterior_samples=200, num_predictive_draws=10)


def test_npe_draws_are_four_independent_chains(npe):
    assert npe.samples.shape == (2, 4, 100, 2)
    tree = npe.to_datatree()
    assert tree["posterior"].attrs["sampling"] == "independent"
    assert tree["log_likelihood"].attrs["source"] == "simulator"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no convergence or shape warning for independent draws
        table = npe.summary(1)
    assert (table["r_hat"] < 1.05).all() and (table["ess_bulk"] > 200).all()
    # the stored log likelihood is the simulator's at the draws, coordinate by coordinate
    theta = npe.samples[1, 2, :5]
    expected = npe.simulator.pointwise_log_likelihood(theta, npe.observations[1].expand(5, 2))
    np.testing.assert_allclose(tree["log_likelihood"]["x"].values[2, :5, 1], expected, rtol=1e-5)


def test_nle_log_likelihood_is_the_estimator_s(nle):
    tree = nle.to_datatree()
    assert tree["posterior"].attrs["sampling"] == "mcmc"
    assert tree["log_likelihood"].attrs["source"] == "estimator"
    assert tree["log_likelihood"]["x"].dims == ("chain", "draw", "observation")
    theta = nle.samples[0, 0, :4]
    potential = nle.posterior.potential_fn
    nle.posterior.set_default_x(nle.observations[0])
    expected = potential(theta, track_gradients=False) - nle.simulator.prior.log_prob(theta)
    np.testing.assert_allclose(
        tree["log_likelihood"]["x"].values[0, :4, 0], expected.detach(), rtol=1e-4, atol=1e-4
    )
    sensitivity = adapter.psense_summary(tree)
    # the N(0, 0.1) prior weighs as much as the exact likelihood: the posterior feels it
    assert (sensitivity["prior"] > 0.05).all() and np.isfinite(sensitivity["likelihood"]).all()
    assert (nle.summary(warn=False)["r_hat"] < 1.2).all()


def test_result_plots_draw_arviz_figures(npe, nle):
    names = npe.parameter_names
    figure = npe.plot_pair()
    assert isinstance(figure, Figure) and "observation 0" in figure.get_suptitle()
    posterior = npe.plot_posterior(1)
    truth = npe.true_parameters[1].numpy()
    marked = [
        line.get_xdata()[0]
        for axis in posterior.axes
        for line in axis.lines
        if line.get_label() == "true value"
    ]
    np.testing.assert_allclose(marked, truth, rtol=1e-6)
    forest = npe.plot_forest()
    assert isinstance(forest, Figure)
    sbc = npe.plot_sbc()
    assert [axis.get_title() for axis in sbc.axes if axis.get_visible()] == names
    ppc = npe.plot_ppc()
    assert isinstance(ppc, Figure) and ppc.axes
    for kind in ("trace", "rank"):
        assert isinstance(nle.plot_trace(kind=kind), Figure)
    loo_pit = arviz_figures.plot_loo_pit(npe.to_datatree(), observation=0)
    assert loo_pit.axes
    with pytest.raises(ValueError, match="no parameters \\['theta_9'\\]"):
        npe.plot_posterior(var_names=["theta_9"])


def test_plots_go_into_given_axes(npe):
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2)
    assert npe.plot_sbc(ax=axes) is figure
    assert npe.plot_posterior(ax=axes) is figure
    plt.close("all")


def test_old_results_load_and_newer_ones_say_why(npe, tmp_path):
    tree = npe.to_datatree()
    old = {}
    for name, node in tree.children.items():
        if name == "diagnostics":
            for diagnostic, child in node.children.items():
                old[f"diagnostics/{diagnostic}"] = child.to_dataset()
        else:
            old[name] = node.to_dataset()
    old["prior"] = old["prior"].isel(observation=0, drop=True)
    old["prior_sbc"] = old["prior_sbc"].isel(chain=0, drop=True).rename(draw="sbc_draw")
    for name in ("log_prior", "log_likelihood"):
        old.pop(name)
    written = xr.DataTree.from_dict(old)
    written.attrs = {k: v for k, v in tree.attrs.items() if k != "layout_version"}
    folder = tmp_path / "old"
    folder.mkdir()
    written.to_netcdf(folder / "result.nc")
    back = sbiplug.StudyResult.load(folder, load_estimator=False)
    with xr.open_datatree(folder / "result.nc") as opened:
        upgraded = upgrade(opened.load())
    assert upgraded["prior_sbc"]["theta_1"].dims == ("chain", "draw")
    assert upgraded.attrs["layout_version"] == LAYOUT_VERSION
    assert back.to_datatree()["prior_sbc"].sizes == {"chain": 1, "draw": 40}
    np.testing.assert_allclose(back.prior_samples, npe.prior_samples)
    written.attrs["layout_version"] = 99
    written.attrs["provenance"] = json.dumps({})
    written.to_netcdf(folder / "result.nc")
    with pytest.raises(ResultFileError, match="layout_version 99 is newer"):
        sbiplug.StudyResult.load(folder, load_estimator=False)
    assert torch.equal(back.samples, npe.samples)
