"""find_modes and the posterior_modes diagnostic: counts, masses, netCDF round trip, refusals."""

from __future__ import annotations

import math
from types import SimpleNamespace

import matplotlib
import numpy as np
import pytest
import torch
import xarray as xr
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

from sbiplug import DiagnosticContext, DiagnosticResult
from sbiplug.toolkit import DiagnosticInputError, OptionError
from sbiplug_distances import DensityDistance, PosteriorModesDiagnostic, find_modes

matplotlib.use("Agg")


def mixture(weights, means, scale):
    components = Independent(Normal(torch.tensor(means), scale * torch.ones(len(means), 2)), 1)
    return MixtureSameFamily(Categorical(torch.tensor(weights)), components)


def crescent(n: int, seed: int = 0) -> tuple[torch.Tensor, object]:
    generator = torch.Generator().manual_seed(seed)
    angle = math.pi * torch.rand(n, generator=generator)
    radius = 1 + 0.1 * torch.randn(n, generator=generator)
    draws = torch.stack([radius * angle.cos(), radius * angle.sin()], dim=1)

    def log_prob(z):
        inside = torch.sigmoid(20 * torch.atan2(z[:, 1], z[:, 0]))
        inside = inside * torch.sigmoid(20 * (math.pi - torch.atan2(z[:, 1], z[:, 0])))
        return -0.5 * ((z.norm(dim=-1) - 1) / 0.1) ** 2 + inside.clamp_min(1e-30).log()

    return draws, log_prob


class AnalyticPosterior:
    """A stand-in for an sbi posterior: the same mixture for every observation."""

    def __init__(self, density) -> None:
        self.density = density

    def log_prob(self, theta, x=None):
        return self.density.log_prob(theta)

    def sample(self, shape, x=None, show_progress_bars=False):
        return self.density.sample(shape)


def test_modes_of_separated_bumps_and_of_a_curved_ridge():
    torch.manual_seed(0)
    bumps = mixture([0.7, 0.3], [[0.0, 0.0], [4.0, 0.0]], 0.6)
    draws = bumps.sample((800,))
    modes = find_modes(draws, DensityDistance(bumps, show_progress_bars=False).fit(draws))
    assert modes.num_modes == 2
    assert np.allclose(modes.masses.numpy(), [0.7, 0.3], atol=0.05)
    assert modes.geodesics.shape == (1, 32, 2) and float(modes.valleys[0]) < 0.5
    # Draws left of the saddle (x = 2) are in the heavier mode.
    assert float((modes.labels == (draws[:, 0] > 2).long()).double().mean()) > 0.97
    draws, log_prob = crescent(800)
    ridge = find_modes(draws, DensityDistance(log_prob, show_progress_bars=False).fit(draws))
    assert ridge.num_modes == 1 and float(ridge.masses[0]) == 1.0


def bridged_bumps(n: int, seed: int) -> tuple[torch.Tensor, object]:
    """Two bumps (0.45 each) joined by a thin uniform band holding the other 0.10."""
    generator = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[-3.0, 0.0], [3.0, 0.0]])
    which = torch.multinomial(torch.tensor([0.45, 0.45, 0.10]), n, True, generator=generator)
    bumps = centres[which.clamp_max(1)] + 0.6 * torch.randn(n, 2, generator=generator)
    band = torch.stack(
        [6 * torch.rand(n, generator=generator) - 3, 0.3 * torch.randn(n, generator=generator)], 1
    )
    draws = torch.where((which == 2)[:, None], band, bumps)

    def log_prob(z):
        bump = -0.5 * ((z[None] - centres[:, None]) / 0.6).pow(2).sum(-1)
        bump = bump + math.log(0.45 / (2 * math.pi * 0.36))
        logsigmoid = torch.nn.functional.logsigmoid
        inside = logsigmoid(20 * (z[:, 0] + 3)) + logsigmoid(20 * (3 - z[:, 0]))
        band_height = 0.1 / (6 * 0.3 * math.sqrt(2 * math.pi))
        strip = inside - 0.5 * (z[:, 1] / 0.3) ** 2 + math.log(band_height)
        return torch.logsumexp(torch.cat([bump, strip[None]]), 0)

    return draws, log_prob


@pytest.mark.parametrize("seed", [0, 1])
def test_a_cluster_on_a_bridge_does_not_glue_two_modes(seed):
    # The band's density is about a tenth of a bump's peak, below valley = 0.2: two modes. The
    # over-clustering puts clusters on the band whose own peak is the band's density; they must
    # join one bump, not link both (the saddle between the bumps is the band's density).
    draws, log_prob = bridged_bumps(800, seed)
    modes = find_modes(draws, DensityDistance(log_prob, show_progress_bars=False).fit(draws))
    assert modes.num_modes == 2
    assert np.allclose(modes.masses.numpy(), [0.5, 0.5], atol=0.05)
    assert float(modes.valleys[0]) < 0.2


@pytest.mark.parametrize("seed", [1, 2])
def test_a_gap_across_a_thin_direction_separates_two_modes(seed):
    # Two 5-D bumps 10 sd apart along a narrow axis (sd 0.08) and wide (0.5) in the other four.
    # An isotropic kNN ball as wide as the bumps smooths over the gap (its ratio is 0.38 and
    # 0.62 for these seeds, above valley = 0.2); the model density shows the dip.
    torch.manual_seed(seed)
    means = torch.zeros(2, 5)
    means[:, 0] = torch.tensor([-0.4, 0.4])
    scale = torch.full((2, 5), 0.5)
    scale[:, 0] = 0.08
    components = Independent(Normal(means, scale), 1)
    density = MixtureSameFamily(Categorical(torch.tensor([0.5, 0.5])), components)
    draws = density.sample((800,))
    modes = find_modes(draws, DensityDistance(density, show_progress_bars=False).fit(draws))
    assert modes.num_modes == 2
    assert np.allclose(modes.masses.numpy(), [0.5, 0.5], atol=0.05)
    assert float((modes.labels == modes.labels[draws[:, 0].argmax()]).double().mean()) < 0.55


def run_diagnostic(**options) -> DiagnosticResult:
    torch.manual_seed(1)
    density = mixture([0.5, 0.5], [[-2.0, 0.0], [2.0, 0.5]], 0.5)
    draws = density.sample((2, 400))  # (observations, draws, D)
    context = DiagnosticContext(
        posterior=AnalyticPosterior(density),
        observations=torch.zeros(2, 3),
        posterior_samples=draws,
        seed=0,
    )
    return PosteriorModesDiagnostic(num_draws=400, **options).run(context)


def test_diagnostic_reports_modes_and_round_trips_through_netcdf(tmp_path):
    result = run_diagnostic()
    data = result.data
    assert data["num_modes"].values.tolist() == [2, 2]
    assert np.allclose(data["mass"].values, 0.5, atol=0.06)
    assert data["geodesic"].sizes == {"observation": 2, "pair": 1, "point": 32, "parameter": 2}
    assert result.statistic == 2.0 and result.summary["num_multimodal"] == 2.0
    path = tmp_path / "modes.nc"
    result.to_dataset().to_netcdf(path)
    with xr.open_dataset(path) as stored:
        loaded = DiagnosticResult.from_dataset(stored.load())
    assert loaded.name == "posterior_modes" and loaded.summary == result.summary
    xr.testing.assert_allclose(loaded.data[list(data.data_vars)], data)
    figure = loaded.plot()  # redrawn from the file through the registered diagnostic
    assert len(figure.axes) == 1
    import matplotlib.pyplot as plt

    _, ax = plt.subplots()
    assert PosteriorModesDiagnostic().plot(loaded, ax=ax, observation=1) is ax.figure
    plt.close("all")


def test_diagnostic_refuses_manifold_parameters_and_bad_options():
    # A stand-in: the torus simulators live in another plugin, and these tests need only the host.
    simulator = SimpleNamespace(name="angles", parameter_manifold="torus", observation_shape=(2,))
    context = DiagnosticContext(simulator=simulator, observations=torch.zeros(1, 2))
    with pytest.raises(DiagnosticInputError, match=r"Euclidean parameters only.*'torus'"):
        PosteriorModesDiagnostic().run(context)
    with pytest.raises(OptionError, match="density must be one of"):
        PosteriorModesDiagnostic(density="kde")
    with pytest.raises(OptionError, match="num_draws"):
        PosteriorModesDiagnostic(num_draws=5)
    with pytest.raises(DiagnosticInputError, match="needs 1000 posterior draws"):
        PosteriorModesDiagnostic().run(
            DiagnosticContext(
                observations=torch.zeros(1, 2), posterior_samples=torch.zeros(1, 50, 2)
            )
        )
    with pytest.raises(OptionError, match="min_mass"):
        find_modes(torch.zeros(10, 2), None, min_mass=1.5)
