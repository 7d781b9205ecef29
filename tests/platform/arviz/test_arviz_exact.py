"""ArviZ on exact-posterior results, one and ten parameters, on whichever ArviZ major is
installed: each number checked against its closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest
import xarray as xr
from conftest import NOISE_VARIANCE, PRIOR_VARIANCE, exact_result
from scipy.stats import kstest, norm

import sbiplug
from sbiplug import inference_data as adapter
from sbiplug.result_layout import LAYOUT_VERSION

SAMPLE_DIMS = ("chain", "draw", "observation")


def test_layout_is_arviz_s_own(exact):
    tree = exact.to_datatree()
    dim = len(exact.parameter_names)
    assert tree.attrs["layout_version"] == LAYOUT_VERSION
    for group in ("posterior", "prior"):
        assert tree[group]["theta_1"].dims == SAMPLE_DIMS  # prior and posterior share dims
    assert tree["log_prior"]["theta"].dims == SAMPLE_DIMS
    assert tree["log_likelihood"]["x"].dims == (*SAMPLE_DIMS, "x_dim_0")  # one per coordinate
    assert tree["log_likelihood"]["x"].shape == (4, 500, 2, dim)
    assert tree["prior_sbc"]["theta_1"].dims == ("chain", "draw")
    assert tree["prior_sbc"].sizes == {"chain": 1, "draw": 300}
    # the stored log densities are the prior's and the likelihood's at the draws
    draws = exact.samples[0, 0, :3]
    expected = exact.simulator.prior.log_prob(draws).numpy()
    np.testing.assert_allclose(tree["log_prior"]["theta"].values[0, :3, 0], expected, rtol=1e-5)
    data = exact.to_arviz()
    assert "pit" in data.diagnostics["sbc"].to_dataset()  # diagnostics reachable on both majors


def test_summary_ess_rhat_of_independent_draws(exact):
    az = adapter.arviz()
    data = exact.to_arviz(observation=0)
    ess = az.ess(data)
    rhat = az.rhat(data)
    for name in exact.parameter_names:
        assert float(ess[name]) > 0.6 * 2000  # independent draws: ESS close to their number
        assert abs(float(rhat[name]) - 1) < 0.01
    table = exact.summary(0)
    mean = exact.observations[0].numpy() / 2
    se = math.sqrt(0.05 / 2000)
    np.testing.assert_allclose(table["mean"].to_numpy(float), mean, atol=5 * se + 1e-3)


def test_pit_values_of_the_exact_posterior_are_uniform(exact):
    pit = exact.to_datatree()["prior_sbc"].to_dataset()
    p_values = [kstest(np.ravel(pit[name].values), "uniform").pvalue for name in pit.data_vars]
    assert min(p_values) > 0.01 / len(p_values)
    overconfident = exact_result(len(exact.parameter_names), scale=0.4).to_datatree()
    pit = overconfident["prior_sbc"].to_dataset()
    assert kstest(np.ravel(pit["theta_1"].values), "uniform").pvalue < 1e-4


def _cjs(p, q, dx):
    def term(a, b):
        with np.errstate(divide="ignore", invalid="ignore"):
            value = np.where(a > 0, a * (np.log2(a) - np.log2((a + b) / 2)), 0.0)
        return np.sum(value * dx) + 0.5 / np.log(2) * np.sum((b - a) * dx)

    return math.sqrt((max(0, term(p, q)) + max(0, term(q, p))) / np.sum((p + q) * dx))


def closed_form_psense(component, x_d, low, high, delta=0.01):
    """Kallioinen et al.'s sensitivity of the Gaussian power posterior, with exact CDFs on the
    draws' range [low, high] (the cumulative JS distance depends on the range integrated)."""

    def moments(alpha):
        prior = (alpha if component == "prior" else 1) / PRIOR_VARIANCE
        likelihood = (alpha if component == "likelihood" else 1) / NOISE_VARIANCE
        return likelihood * x_d / (prior + likelihood), math.sqrt(1 / (prior + likelihood))

    base_mean, base_sd = moments(1.0)
    grid = np.linspace(low, high, 20001)
    mid, dx = (grid[1:] + grid[:-1]) / 2, np.diff(grid)
    total = 0.0
    for alpha in (1 / (1 + delta), 1 + delta):
        mean, sd = moments(alpha)
        up = _cjs(norm.cdf(mid, base_mean, base_sd), norm.cdf(mid, mean, sd), dx)
        down = _cjs(norm.sf(mid[::-1], base_mean, base_sd), norm.sf(mid[::-1], mean, sd), dx)
        total += max(up, down)
    return total / (2 * math.log2(1 + delta))


@pytest.mark.parametrize("component", ["prior", "likelihood"])
def test_psense_matches_the_closed_form_power_posterior(exact, component):
    values = adapter.psense(exact.to_datatree(), component, observation=0)
    draws = exact.samples[0].reshape(-1, exact.samples.shape[-1]).numpy()
    x_o = exact.observations[0].numpy()
    for index, name in enumerate(exact.parameter_names):
        truth = closed_form_psense(
            component, x_o[index], draws[:, index].min(), draws[:, index].max()
        )
        # importance-sampling noise of 2000 draws: within 35% (pilot: 0.72 to 1.15 of truth)
        assert float(values[name]) == pytest.approx(truth, rel=0.35)
    table = adapter.psense_summary(exact.to_datatree())
    assert list(table.columns) == ["prior", "likelihood", "diagnosis"]
    assert list(table.index) == exact.parameter_names


def test_loo_matches_leave_one_coordinate_out_and_compare_ranks_the_exact_model_first():
    exact = exact_result(10)
    shifted = exact_result(10, shift=0.3)
    estimate = adapter.loo(exact.to_datatree(), observation=0)
    # leaving x_d out returns theta_d to its prior: the predictive of x_d is N(0, 0.2)
    x_o = exact.observations[0].numpy()
    truth = norm.logpdf(x_o, 0, math.sqrt(PRIOR_VARIANCE + NOISE_VARIANCE)).sum()
    assert estimate.elpd == pytest.approx(truth, abs=3 * estimate.se)
    assert estimate.pareto_k.shape == (10,)
    table = adapter.compare({"exact": exact.to_arviz(), "shifted": shifted.to_arviz()})
    assert list(table.index) == ["exact", "shifted"]
    assert table.loc["exact", "elpd"] > table.loc["shifted", "elpd"]
    assert table.loc["exact", "weight"] > 0.9


def test_concat_and_netcdf_round_trip(exact, tmp_path):
    tree = exact.to_datatree()
    joined = adapter.concat(tree, tree, dim="chain")
    posterior = joined["posterior"] if hasattr(joined, "children") else joined.posterior
    assert posterior.sizes["chain"] == 8 and posterior.sizes["draw"] == 500
    log_likelihood = (
        joined["log_likelihood"] if hasattr(joined, "children") else joined.log_likelihood
    )
    assert log_likelihood.sizes["chain"] == 8
    exact.save(tmp_path / "result")
    with xr.open_datatree(tmp_path / "result" / "result.nc") as opened:  # plain xarray
        assert opened.attrs["layout_version"] == LAYOUT_VERSION
        for group in ("posterior", "log_prior", "log_likelihood", "prior_sbc", "prior"):
            xr.testing.assert_allclose(opened[group].to_dataset(), tree[group].to_dataset())
    back = sbiplug.StudyResult.load(tmp_path / "result", load_estimator=False)
    assert back.log_likelihood.shape == exact.log_likelihood.shape
    np.testing.assert_allclose(back.sbc_pit(), exact.sbc_pit())
