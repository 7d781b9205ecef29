"""DensityDistance: limits with known answers, metric properties, relaxation, bad input."""

from __future__ import annotations

import math

import pytest
import torch

from sbiplug.toolkit import OptionError
from sbiplug_distances import DensityDistance, relax, train_score_model
from sbiplug_distances.densities import as_density
from sbiplug_distances.relaxation import respace


def radial_log_prob(x):
    """p = 1/r: with beta = 1 the metric factor is r, flattened by w = z^2 / 2."""
    return -x.norm(dim=-1).log()


def radial_score(x):
    return -x / x.norm(dim=-1, keepdim=True) ** 2


def annulus(n: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    radius = 0.05 + 1.5 * torch.rand(n, generator=generator).sqrt()
    angle = 2 * math.pi * torch.rand(n, generator=generator)
    return torch.stack([radius * angle.cos(), radius * angle.sin()], dim=1)


def test_uniform_density_gives_scaled_euclidean():
    box = torch.rand(400, 3, generator=torch.Generator().manual_seed(0)) * 2.0
    log_p = math.log(1 / 8)
    density = lambda x: torch.full((len(x),), log_p)  # noqa: E731
    a = torch.tensor([[0.2, 0.3, 0.1], [1.8, 0.2, 1.0]])
    b = torch.tensor([[1.7, 1.5, 1.9], [0.1, 1.9, 0.3]])
    euclidean = (a - b).norm(dim=1).double()
    for adapted, scale in [(False, 8.0), (True, 8.0 ** (1 / 3))]:
        distance = DensityDistance(density, adapted=adapted, show_progress_bars=False).fit(box)
        relaxed = distance.distance(a, b)
        assert torch.allclose(relaxed, scale * euclidean, rtol=1e-4)
        # A graph path is a polyline between the ends: never shorter than the straight line.
        assert bool((distance.distance(a, b, relax=False) >= scale * euclidean - 1e-9).all())
    flat = DensityDistance(radial_log_prob, beta=0.0, show_progress_bars=False).fit(annulus(300))
    a, b = torch.tensor([[1.0, 0.0]]), torch.tensor([[-0.5, 0.6]])
    assert torch.allclose(flat.distance(a, b), (a - b).norm(dim=1).double(), rtol=1e-4)


@pytest.mark.parametrize("score", [None, radial_score])
def test_relaxation_is_monotone_and_reaches_the_analytic_geodesic(score):
    distance = DensityDistance(
        radial_log_prob,
        score,
        adapted=False,
        num_points=64,
        max_iterations=600,
        show_progress_bars=False,
    ).fit(annulus(2000))
    a = torch.tensor([[1.0, 0.0]])
    b = torch.tensor([[math.cos(math.pi / 3), math.sin(math.pi / 3)]])
    truth = math.sqrt(3) / 2  # |z_a^2 - z_b^2| / 2
    graph = float(distance.distance(a, b, relax=False))
    path = distance.geodesic(a, b, relax=False)
    result = relax(path.double(), distance.density, 1.0, num_points=64, max_iterations=600)
    ends = [*result.level_starts[1:], len(result.history)]
    for start, end in zip(result.level_starts, ends):
        level = result.history[start:end]
        assert bool((level[1:] <= level[:-1]).all())
    assert graph > truth * 1.01  # the graph path is measurably off ...
    assert abs(float(result.lengths[0]) - truth) < 2e-3 * truth  # ... the relaxed one is not
    # The analytic geodesic: the straight line between w_a and w_b, mapped back by sqrt(2 w).
    t = torch.linspace(0, 1, 400, dtype=torch.float64)
    w = 0.5 * (1 - t) + 0.5 * torch.exp(torch.tensor(2j * math.pi / 3)) * t
    z = torch.sqrt(2 * w)
    curve = torch.stack([z.real, z.imag], dim=1)
    gap = torch.cdist(result.paths[0], curve).min(dim=1).values.max()
    assert float(gap) < 5e-3


def test_pairwise_is_a_metric_and_relaxed_distances_nearly_so():
    generator = torch.Generator().manual_seed(1)
    samples = annulus(600, seed=2)
    distance = DensityDistance(radial_log_prob, show_progress_bars=False).fit(samples)
    points = annulus(40, seed=3)
    matrix = distance.pairwise(points)
    assert torch.equal(matrix, matrix.T) and bool((matrix.diagonal() == 0).all())
    assert bool((matrix[~torch.eye(40, dtype=torch.bool)] > 0).all())
    triples = torch.randint(40, (200, 3), generator=generator)
    i, j, k = triples.T
    assert bool((matrix[i, k] <= matrix[i, j] + matrix[j, k] + 1e-12).all())
    # Relaxed distances: symmetric and triangle-consistent up to the discretisation error.
    i, j, k = triples[:30].T
    ij, jk, ik = (distance.distance(points[p], points[q]) for p, q in [(i, j), (j, k), (i, k)])
    ji = distance.distance(points[j], points[i])
    assert torch.allclose(ij, ji, rtol=2e-3)
    assert bool((ik <= (ij + jk) * 1.002).all())
    assert bool((ij <= matrix[i, j] * 1.0001 + 1e-9).all())  # relaxing never lengthens


def test_fitted_flow_distance_at_defaults_is_accurate():
    scale = torch.tensor([1.0, 0.5])
    gauss = torch.distributions.Independent(torch.distributions.Normal(torch.zeros(2), scale), 1)
    samples = torch.randn(1200, 2, generator=torch.Generator().manual_seed(0)) * scale
    truth = DensityDistance(gauss, show_progress_bars=False).fit(samples)
    learned = DensityDistance(show_progress_bars=False).fit(samples)
    a = torch.tensor([[-1.5, 0.3], [0.0, -0.8], [1.2, 0.5]])
    b = torch.tensor([[1.5, 0.2], [0.2, 0.8], [-1.0, -0.4]])
    reference = truth.distance(a, b)
    error = ((learned.distance(a, b) - reference).abs() / reference).max()
    # A flow whose log-density is off by |delta| <= 0.2 along the path changes the adapted
    # factor p^(-1/2) by at most e^0.1: a 10% bound on the relative error.
    assert float(error) < 0.1


def test_knn_density_gives_graph_distances_only():
    samples = annulus(500)
    distance = DensityDistance("knn", show_progress_bars=False).fit(samples)
    points = annulus(10, seed=5)
    matrix = distance.pairwise(points)
    assert torch.equal(matrix, matrix.T) and bool((matrix >= 0).all())
    with pytest.raises(OptionError, match="needs a density"):
        distance.distance(points[:2], points[2:4], relax=True)
    assert distance.geodesic(points[:2], points[2:4], num_points=7).shape == (2, 7, 2)


def test_score_model_learns_a_gaussian_score():
    samples = torch.randn(2000, 2, generator=torch.Generator().manual_seed(0)) * 2.0
    model = train_score_model(samples, num_steps=600, show_progress_bars=False)
    x = torch.randn(200, 2, generator=torch.Generator().manual_seed(1)) * 2.0
    with torch.no_grad():
        learned = model(x)
    cosine = torch.nn.functional.cosine_similarity(learned, -x / 4.0, dim=1)
    assert float(cosine.mean()) > 0.95
    # It plugs in as the score of a distance.
    density = as_density(torch.distributions.Normal(0.0, 2.0).log_prob, model)
    assert density.score(x).shape == x.shape


def test_respace_keeps_ends_and_equalises_segments():
    path = torch.tensor([[[0.0, 0.0], [0.1, 0.0], [3.0, 0.0]]], dtype=torch.float64)
    spaced = respace(path, 4)
    assert torch.allclose(spaced[0, :, 0], torch.tensor([0.0, 1.0, 2.0, 3.0], dtype=torch.float64))


def test_bad_input_is_refused_before_work():
    with pytest.raises(OptionError, match="beta"):
        DensityDistance(beta=-1.0)
    with pytest.raises(OptionError, match="density must be"):
        DensityDistance(density=42)
    with pytest.raises(OptionError, match="density must be None, 'knn'"):
        DensityDistance(density="kde")
    with pytest.raises(OptionError, match="samples must be a tensor of shape"):
        DensityDistance(radial_log_prob).fit(torch.zeros(10))
    with pytest.raises(OptionError, match="NaN"):
        DensityDistance(radial_log_prob).fit(torch.full((20, 2), float("nan")))
    with pytest.raises(RuntimeError, match="not fitted"):
        DensityDistance(radial_log_prob).distance(torch.zeros(2), torch.ones(2))
    distance = DensityDistance(radial_log_prob, show_progress_bars=False).fit(annulus(50))
    with pytest.raises(OptionError, match=r"a must have shape \(m, 2\)"):
        distance.distance(torch.zeros(3, 3), torch.zeros(3, 3))
    with pytest.raises(OptionError, match="same shape"):
        distance.distance(torch.zeros(3, 2), torch.zeros(2, 2))
    with pytest.raises(OptionError, match="num_points"):
        distance.geodesic(torch.zeros(2), torch.ones(2), num_points=2)
