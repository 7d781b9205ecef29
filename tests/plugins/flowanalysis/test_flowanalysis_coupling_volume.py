"""A constant-Jacobian flow gives the -1/2 chi^2_D law, and volume_preservation flags it."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from sbiplug import DiagnosticContext, DiagnosticResult, make_diagnostic
from sbiplug_flowanalysis import CouplingFlow, VolumePreservationWarning, chi2_law_test


def _random_flow(volume_preserving: bool, condition_shape=(0,), seed: int = 0) -> CouplingFlow:
    """An untrained flow with random (non-identity) subnets and global scale."""
    flow = CouplingFlow(
        3, condition_shape, num_blocks=3, hidden_features=(16,), volume_preserving=volume_preserving
    )
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in flow.parameters():
            parameter.copy_(0.5 * torch.randn(parameter.shape, generator=generator))
    return flow.eval()


def test_a_volume_preserving_flow_has_the_shifted_chi2_density_law():
    flow = _random_flow(True)
    # Seeded draws: under the law the p-values are uniform, so an unseeded run fails 1 in 100.
    torch.manual_seed(0)
    with torch.no_grad():
        theta = flow.sample((3000,))
        log_prob = flow.log_prob(theta)
        _, log_det = flow.latent_and_log_det(theta.unsqueeze(1))
    assert float(log_det.std()) < 1e-5  # constant |det J|, but not 1: a global scale
    shift = -1.5 * math.log(2 * math.pi) + float(log_det.mean())
    assert abs(float(log_det.mean())) > 0.1
    # log q = shift - 1/2 chi^2_3 exactly
    p = stats.kstest(2 * (shift - log_prob.numpy()), stats.chi2(3).cdf).pvalue
    assert p > 0.01
    _, p_fitted, fitted = chi2_law_test(log_prob.double().numpy(), 3, num_null=100)
    assert p_fitted > 0.01 and abs(fitted - shift) < 0.1


def test_a_free_scale_flow_breaks_the_law():
    flow = _random_flow(False)
    torch.manual_seed(0)
    with torch.no_grad():
        log_prob = flow.log_prob(flow.sample((3000,)))
    _, p, _ = chi2_law_test(log_prob.double().numpy(), 3, num_null=100)
    assert p < 0.05


def test_diagnostic_flags_the_vp_flow_and_passes_the_free_one(tmp_path):
    diagnostic = make_diagnostic("volume_preservation", num_samples=500, num_null=50)
    with pytest.warns(VolumePreservationWarning, match="different widths"):
        flagged = diagnostic.run(DiagnosticContext(estimator=_random_flow(True)))
    assert flagged.passed is False and flagged.data["volume_preserving"].values.tolist() == [1]
    free = diagnostic.run(DiagnosticContext(estimator=_random_flow(False)))
    assert free.passed is True and float(free.data["log_det_sd"][0]) > 0.05
    # Stored as netCDF and redrawn from the file alone.
    path = tmp_path / "volume_preservation.nc"
    flagged.to_dataset().to_netcdf(path)
    import xarray as xr

    loaded = DiagnosticResult.from_dataset(xr.load_dataset(path))
    figure = loaded.plot()
    assert figure.axes and loaded.passed is False


def test_per_observation_result_for_a_conditional_flow():
    flow = _random_flow(False, condition_shape=(2,), seed=1)
    observations = torch.tensor([[0.0, 0.0], [1.0, -1.0], [2.0, 0.5]])
    result = make_diagnostic("volume_preservation", num_samples=300, num_null=50).run(
        DiagnosticContext(estimator=flow, observations=observations)
    )
    assert result.data.sizes["observation"] == 3
    assert np.all(result.data["log_det_sd"].values > 0.05) and result.passed


@pytest.mark.parametrize("name", ["nsf", "zuko_nsf"])
def test_log_det_of_sbi_flows_satisfies_the_change_of_variables(name):
    from sbi.neural_nets import posterior_nn

    from sbiplug_flowanalysis.volume import _log_det

    torch.manual_seed(0)
    theta, x = torch.randn(200, 2), torch.randn(200, 3) * 5 + 2  # x far from standard
    estimator = posterior_nn(name, hidden_features=8, num_transforms=2)(theta, x)
    with torch.no_grad():
        for parameter in estimator.parameters():
            parameter.add_(0.1 * torch.randn(parameter.shape))
        x_o = x[:1]
        draws = estimator.sample((50,), x_o)
        log_prob = estimator.log_prob(draws, x_o)[:, 0]
        log_det = _log_det(estimator, draws, x_o, log_prob)
        if name == "nsf":  # nflows: log|det| comes from the transform; check it against log q
            from sbiplug.sbi_internals import nflows_flow_parts

            transform, _, embedding = nflows_flow_parts(estimator)
            z, _ = transform(draws[:, 0], context=embedding(x_o.expand(50, 3)))
            latent = -0.5 * (z.pow(2).sum(-1) + 2 * math.log(2 * math.pi))
            assert torch.allclose(latent + log_det, log_prob, atol=1e-4)
    assert float(log_det.std()) > 1e-3  # sbi's spline flows are not volume-preserving
