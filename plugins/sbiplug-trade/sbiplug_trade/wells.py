"""Quartic-well temperature families of TRADE: ``double_well`` (2-D) and ``multi_well`` (d-D).

p(x | T) ∝ exp(-E(x) / T) with

* double well: E(x) = x_1^4 - 4 x_1^2 + x_2^2 / 2 (two modes, x_1 = ±sqrt(2));
* multi well: E(x) = sum_i (x_i^4 - 4 x_i^2) (2^d modes, one per orthant).

Both factorise over coordinates, so ground truth is exact per dimension: the quartic marginal by
inverse CDF on a fine grid (trapezoidal cumulative, linear interpolation), the quadratic one as
N(0, T). Benchmarks of TRADE (Wahl et al., arXiv 2410.19492): multi-well data at T = 1,
condition range T in [0.4, 1.1], evaluated at T = 0.5.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from sbiplug import Target
from sbiplug.toolkit import check_positive_int

__all__ = ["DoubleWell", "MultiWell", "quartic_well_inverse_cdf_sample"]


def quartic_well_energy(x: Tensor) -> Tensor:
    """x^4 - 4 x^2, elementwise."""
    return x**4 - 4 * x**2


def quartic_well_inverse_cdf_sample(
    shape: tuple[int, ...], temperature: float, rng: np.random.Generator, bound: float = 5.0
) -> np.ndarray:
    """Exact draws from exp(-(x^4 - 4x^2) / T) / Z by inverse CDF on a 200 001-point grid."""
    grid = np.linspace(-bound, bound, 200_001)
    log_density = -(grid**4 - 4 * grid**2) / temperature
    density = np.exp(log_density - log_density.max())
    cumulative = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]))])
    cumulative /= cumulative[-1]
    return np.interp(rng.random(shape), cumulative, grid)


class _TemperatureWell(Target):
    condition_name = "T"
    condition_kind = "temperature"
    base_condition = 1.0

    def energy(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def log_density(self, x: Tensor, c: Tensor) -> Tensor:
        """-E(x) / T, shape ``(n,)``; ``c`` is the temperature, shape ``(n, 1)`` or scalar."""
        return -self.energy(x) / torch.as_tensor(c, dtype=x.dtype).reshape(-1)

    def mode_labels(self, x: Tensor) -> Tensor:
        """The orthant of the quartic coordinates as an integer, shape ``(n,)``."""
        bits = (x[:, : self.num_wells] > 0).long()
        return (bits * (2 ** torch.arange(self.num_wells))).sum(dim=-1)

    @property
    def num_modes(self) -> int:
        return 2**self.num_wells

    def exact_mode_masses(self, c: float) -> Tensor:
        """Mass of each orthant, shape ``(num_modes,)``: E is even in every quartic coordinate,
        so all 2^wells orthants hold the same mass at every temperature."""
        return torch.full((self.num_modes,), 1.0 / self.num_modes, dtype=torch.float64)


class DoubleWell(_TemperatureWell):
    """E(x) = x_1^4 - 4 x_1^2 + x_2^2 / 2 at temperature T.

    Arguments:
        condition_range: Temperature range.
    """

    name = "double_well"
    dim = 2
    num_wells = 1

    def __init__(self, condition_range: tuple[float, float] = (0.5, 2.0)) -> None:
        self.condition_range = (float(condition_range[0]), float(condition_range[1]))

    def energy(self, x: Tensor) -> Tensor:
        return quartic_well_energy(x[:, 0]) + 0.5 * x[:, 1] ** 2

    def sample(self, num_samples: int, c: float, *, seed: int | None = 0) -> Tensor:
        """Exact draws at temperature ``c``, shape ``(num_samples, 2)``."""
        rng = np.random.default_rng(seed)
        first = quartic_well_inverse_cdf_sample((num_samples,), float(c), rng)
        second = np.sqrt(float(c)) * rng.standard_normal(num_samples)
        return torch.from_numpy(np.stack([first, second], axis=1)).float()


class MultiWell(_TemperatureWell):
    """E(x) = sum_i (x_i^4 - 4 x_i^2) in ``dim`` dimensions at temperature T.

    Arguments:
        dim: Number of wells (the paper uses 5: 32 modes).
        condition_range: Temperature range.
    """

    name = "multi_well"

    def __init__(self, dim: int = 5, condition_range: tuple[float, float] = (0.4, 1.1)) -> None:
        self.dim = check_positive_int("dim", dim, owner="target 'multi_well'")
        self.num_wells = dim
        self.condition_range = (float(condition_range[0]), float(condition_range[1]))

    def energy(self, x: Tensor) -> Tensor:
        return quartic_well_energy(x).sum(dim=-1)

    def sample(self, num_samples: int, c: float, *, seed: int | None = 0) -> Tensor:
        """Exact draws at temperature ``c``, shape ``(num_samples, dim)``."""
        rng = np.random.default_rng(seed)
        draws = quartic_well_inverse_cdf_sample((num_samples, self.dim), float(c), rng)
        return torch.from_numpy(draws).float()
