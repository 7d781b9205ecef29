"""The phi4 target's HMC ground truth reproduces exactly known observables.

* kappa = 0 factorises into independent sites with density exp(-(1 - 2 lam) p^2 - lam p^4), so
  <phi^2> and <phi^4> are one-dimensional integrals (quadrature).
* Invariance (the consequence of detailed balance): one HMC transition started from exact draws
  at kappa = 0 leaves their distribution unchanged (Kolmogorov-Smirnov against the exact CDF).
* Schwinger-Dyson (integration by parts, valid at every kappa): <sum_x phi_x dS/dphi_x> = V.
* Z2 symmetry: <M> = 0 at every kappa (on a small lattice the chains tunnel between signs).
Monte Carlo errors come from independent chains: standard error = sd of chain means / sqrt(chains).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import stats
from scipy.integrate import quad

from sbiplug_trade.lattice import Phi4Lattice, phi4_observables
from sbiplug_trade.mcmc import hmc_sample, hmc_step

LAM = 0.02


def _site_density(p: float) -> float:
    return np.exp(-(1 - 2 * LAM) * p**2 - LAM * p**4)


def _site_moment(power: int) -> float:
    z, _ = quad(_site_density, -np.inf, np.inf)
    value, _ = quad(lambda p: p**power * _site_density(p), -np.inf, np.inf)
    return value / z


def _exact_site_draws(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    grid = np.linspace(-8, 8, 100_001)
    density = _site_density(grid)
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]))])
    return np.interp(rng.random(shape), cdf / cdf[-1], grid)


def _chain_means(draws: torch.Tensor, chains: int, values) -> np.ndarray:
    per_draw = values(draws).reshape(-1, chains)  # draws are draw-major: (num_draws, chains)
    return per_draw.mean(0).numpy()


def test_hmc_reproduces_single_site_moments_at_zero_hopping():
    target = Phi4Lattice(lattice_size=4)
    chains = 64
    initial = torch.randn(chains, target.dim, generator=torch.Generator().manual_seed(0))
    draws, info = hmc_sample(
        lambda x: target.log_density(x, 0.0), initial, 100, burn_in=100, thin=1, seed=1
    )
    assert 0.6 < info["acceptance"] < 0.97
    for power in (2, 4):
        means = _chain_means(draws, chains, lambda x, p=power: (x**p).mean(-1))
        error = means.std(ddof=1) / np.sqrt(chains)
        assert abs(means.mean() - _site_moment(power)) < 4 * error


def test_one_hmc_transition_leaves_the_exact_distribution_invariant():
    target = Phi4Lattice(lattice_size=4)
    start = torch.from_numpy(_exact_site_draws((4000, target.dim), np.random.default_rng(2)))
    moved, accept = hmc_step(
        lambda x: target.log_density(x, 0.0),
        start.float(),
        0.6,
        6,
        torch.Generator().manual_seed(3),
    )
    assert 0.3 < float(accept.mean()) < 1.0  # the kernel really moves
    assert float((moved != start.float()).any(-1).float().mean()) > 0.3
    grid = np.linspace(-8, 8, 100_001)
    density = _site_density(grid)
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]))])
    cdf /= cdf[-1]
    # one site per chain: independent draws, so the KS test is valid
    values = moved[:, 5].double().numpy()
    p_value = stats.kstest(values, lambda v: np.interp(v, grid, cdf)).pvalue
    assert p_value > 1e-3


def test_schwinger_dyson_identity_and_symmetry_at_nonzero_hopping():
    kappa = 0.2
    target = Phi4Lattice(lattice_size=4)
    chains = 64
    initial = torch.randn(chains, target.dim, generator=torch.Generator().manual_seed(4))
    draws, _ = hmc_sample(
        lambda x: target.log_density(x, kappa), initial, 100, burn_in=150, thin=1, seed=5
    )

    def virial(x: torch.Tensor) -> torch.Tensor:
        x = x.clone().requires_grad_(True)
        (gradient,) = torch.autograd.grad(target.action(x, kappa).sum(), x)
        return (x * gradient).sum(-1).detach()

    means = _chain_means(draws, chains, virial)
    error = means.std(ddof=1) / np.sqrt(chains)
    assert abs(means.mean() - target.dim) < 4 * error
    magnetisation = _chain_means(draws, chains, lambda x: x.mean(-1))
    assert abs(magnetisation.mean()) < 4 * magnetisation.std(ddof=1) / np.sqrt(chains)
    observables = phi4_observables(draws, target, kappa)
    assert observables["susceptibility"] > 0 and observables["binder"] < 2 / 3


def test_hopping_derivative_of_log_density():
    target = Phi4Lattice()
    x = torch.randn(3, 64, generator=torch.Generator().manual_seed(6))
    kappa = torch.full((3, 1), 0.27, requires_grad=True)
    (gradient,) = torch.autograd.grad(target.log_density(x, kappa).sum(), kappa)
    torch.testing.assert_close(gradient[:, 0], 2 * target.hopping_sum(x))
