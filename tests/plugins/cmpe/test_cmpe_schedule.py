"""The iCT schedule: Karras grid, doubling curriculum, lognormal pairs, pseudo-Huber."""

from __future__ import annotations

import math

import torch

from sbiplug_cmpe.schedule import (
    curriculum_intervals,
    karras_grid,
    pseudo_huber,
    sample_pair_indices,
)


def test_karras_grid_has_exact_ends_and_rho_spacing():
    grid = karras_grid(11, 1e-3, 10.0)
    assert grid.shape == (11,)
    assert torch.all(grid[1:] > grid[:-1])
    assert math.isclose(float(grid[0]), 1e-3, rel_tol=1e-6)
    assert math.isclose(float(grid[-1]), 10.0, rel_tol=1e-6)
    # t^(1/rho) is evenly spaced
    roots = grid.double() ** (1 / 7)
    assert torch.allclose(roots.diff(), roots.diff()[0].expand(10), rtol=1e-4)


def test_coarse_grid_is_nested_in_the_final_grid():
    """s0 = 10 divides s1 = 50, so 10 sampling steps re-noise at trained levels."""
    coarse, fine = karras_grid(11, 1e-3, 10.0), karras_grid(51, 1e-3, 10.0)
    assert torch.allclose(coarse, fine[::5], rtol=1e-5)


def test_curriculum_doubles_from_s0_to_s1_over_fixed_length():
    total = 1000
    levels = [curriculum_intervals(k, total, 10, 50) for k in range(total)]
    assert levels[0] == 10 and levels[-1] == 50
    assert sorted(set(levels)) == [10, 20, 40, 50]
    # K' = floor(1000 / (log2(5) + 1)) = 301 steps per level
    assert levels.index(20) == 301 and levels.index(40) == 602 and levels.index(50) == 903
    assert curriculum_intervals(5 * total, total, 10, 50) == 50


def test_pairs_follow_discretised_lognormal():
    grid = karras_grid(51, 1e-3, 10.0)
    generator = torch.Generator().manual_seed(0)
    index = sample_pair_indices(grid, 200_000, generator=generator)
    assert int(index.min()) >= 0 and int(index.max()) <= 49
    cdf = torch.erf((grid.double().log() + 1.1) / (math.sqrt(2) * 2.0))
    expected = (cdf[1:] - cdf[:-1]) / (cdf[-1] - cdf[0])
    observed = torch.bincount(index, minlength=50).double() / len(index)
    # binomial standard error, 5 sigma per bin
    tolerance = 5 * torch.sqrt(expected * (1 - expected) / len(index)) + 1e-4
    assert torch.all((observed - expected).abs() < tolerance)


def test_pseudo_huber_is_elementwise_and_quadratic_then_linear():
    c = 0.00054 * math.sqrt(4)
    difference = torch.tensor([[0.0, 1e-5, 1.0, -3.0]])
    value = pseudo_huber(difference, dim=4)
    assert value.shape == difference.shape
    assert float(value[0, 0]) == 0.0
    assert math.isclose(float(value[0, 1]), 1e-10 / (2 * c), rel_tol=1e-2)
    assert math.isclose(float(value[0, 3]), 3.0 - c, rel_tol=1e-4)
