"""The ``ood`` diagnostic: registration, the split, outlier flags, the result and its plot."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

import sbiplug
from sbiplug.diagnostic import DiagnosticContext, DiagnosticResult
from sbiplug.testing import check_diagnostic
from sbiplug_ood import OODDiagnostic, OODWarning, train_density
from sbiplug_ood.diagnostic import empirical_p_values


def test_registered_with_a_lazy_factory():
    # that plugin.py imports no torch is checked for every plugin in tests/platform/plugins
    spec = sbiplug.diagnostics()["ood"]
    assert spec.requires == ("observations",)
    assert spec.factory == "sbiplug_ood.diagnostic:OODDiagnostic"
    assert isinstance(sbiplug.make_diagnostic("ood", checkpoint=1), OODDiagnostic)


def test_empirical_p_values_and_percentiles():
    reference = torch.arange(1.0, 100.0)  # 99 scores 1..99
    percentiles, p_values = empirical_p_values(torch.tensor([0.0, 50.0, 1000.0]), reference)
    torch.testing.assert_close(
        percentiles, torch.tensor([0.0, 100 * 49.5 / 99, 100.0], dtype=torch.float64)
    )
    torch.testing.assert_close(
        p_values, torch.tensor([1.0, 51 / 100, 1 / 100], dtype=torch.float64)
    )


@pytest.fixture(scope="module")
def study_result():
    simulator = sbiplug.make_simulator("gaussian_linear", dim=3)
    in_distribution = simulator.simulate(simulator.sample_prior(3, seed=20), seed=21)
    observations = torch.cat([in_distribution, torch.full((1, 3), 4.0)])
    context = DiagnosticContext(simulator=simulator, observations=observations, seed=0)
    diagnostic = OODDiagnostic(
        checkpoint=2, num_simulations=1200, hidden_features=(32, 32), transforms=2
    )
    with pytest.warns(OODWarning, match="#3"):
        result = diagnostic.run(context)
    return result


def test_flags_the_far_observation_only(study_result):
    data = study_result.data
    assert data["outlier"].values.tolist() == [0, 0, 0, 1]
    assert not study_result.passed
    # The far observation outscores every reference simulation: p = 1 / (n_ref + 1).
    assert data["p_value"].values[3] == pytest.approx(1 / (data.attrs["num_reference"] + 1))
    assert data["percentile"].values[3] == 100.0
    assert study_result.p_value == pytest.approx(4 * data["p_value"].values[3])
    assert (data["p_value"].values[:3] >= 0.05 / 4).all()
    # 50 % trains the flow, the rest splits 50/50 into fit and reference halves.
    attrs = data.attrs
    assert (attrs["num_train"], attrs["num_fit"], attrs["num_reference"]) == (600, 300, 300)
    assert data.sizes["reference"] == 300
    assert attrs["checkpoint"] == 2


def test_split_is_disjoint_and_halves_the_rest():
    train, fit, reference = OODDiagnostic()._split(1001, seed=3)
    everything = torch.cat([train, fit, reference])
    assert len(train) == 500 and len(fit) == 250 and len(reference) == 251
    assert len(torch.unique(everything)) == 1001


def test_result_round_trips_through_netcdf_and_plots(study_result, tmp_path):
    path = tmp_path / "ood.nc"
    study_result.to_dataset().to_netcdf(path, engine="h5netcdf")
    loaded = DiagnosticResult.from_dataset(xr.load_dataset(path, engine="h5netcdf"))
    assert loaded.passed is False and loaded.p_value == pytest.approx(study_result.p_value)
    np.testing.assert_allclose(loaded.data["score"], study_result.data["score"])
    assert list(loaded.data["feature"].values) == list(study_result.data["feature"].values)
    figure = loaded.plot()
    assert figure.axes[0].get_xlabel().startswith("gradient-norm OOD score")
    import matplotlib.pyplot as plt

    _, ax = plt.subplots()
    assert study_result.plot(ax=ax) is ax.figure


def test_reuses_a_given_density_model_and_passes_in_distribution():
    generator = torch.Generator().manual_seed(22)
    x = torch.randn(400, 2, generator=generator)
    model = train_density(
        torch.randn(400, 2, generator=generator), 2, [2], hidden_features=(16,), transforms=1
    )[2]
    observation = torch.randn(2, generator=generator)  # one draw: shape (2,) is accepted too
    context = DiagnosticContext(x=x, observations=observation, seed=1)
    # The conformance kit also checks the netCDF round trip and plotting into given axes.
    result = check_diagnostic("ood", context, density_model=model)
    assert result.data.attrs["num_train"] == 0
    assert result.data.attrs["num_fit"] == 200
    assert result.passed and result.data.sizes["observation"] == 1


def test_errors_before_work():
    with pytest.raises(ValueError, match="checkpoint must be a non-negative int"):
        OODDiagnostic(checkpoint=-1)
    with pytest.raises(ValueError, match="alpha"):
        OODDiagnostic(alpha=1.5)
    x = torch.randn(100, 2)
    with pytest.raises(ValueError, match="needs observations"):
        OODDiagnostic().run(DiagnosticContext(x=x))
    with pytest.raises(ValueError, match="do not match"):
        OODDiagnostic().run(DiagnosticContext(x=x, observations=torch.zeros(1, 3)))
    with pytest.raises(ValueError, match="at least 42 finite simulations"):
        OODDiagnostic().run(DiagnosticContext(x=x[:30], observations=torch.zeros(1, 2)))
    with pytest.raises(ValueError, match=r"context\.x"):
        OODDiagnostic().run(DiagnosticContext(observations=torch.zeros(1, 2)))
