"""Set simulators: random trial counts, exact posteriors, padding checks."""

from __future__ import annotations

import pytest
import torch

import sbiplug
from sbiplug_context import SetShapeError, calibration_by_trial_count, set_sizes


@pytest.mark.parametrize("name", ["gaussian_sets", "mixed_effects"])
def test_sizes_batching_and_exact_posterior(name):
    simulator = sbiplug.make_simulator(name, min_trials=3, max_trials=25)
    theta = simulator.sample_prior(600, seed=0)
    x = simulator.simulate(theta, seed=1)
    sizes = set_sizes(x)
    assert x.shape == (600, 25, simulator.element_dim)
    assert int(sizes.min()) == 3 and int(sizes.max()) == 25
    assert bool(simulator.valid_rows(x).all())
    # a batch equals its rows simulated in turn from one generator (first rows here)
    head = simulator.simulate(theta[:5], seed=1)
    assert torch.equal(head.nan_to_num(), x[:5].nan_to_num())
    # the exact posterior: standardised errors of the truth are N(0, 1) (600 draws: 4.5 se)
    errors = []
    for i in range(600):
        mean, cov = simulator.posterior_moments(x[i])
        errors.append((theta[i].double() - mean) / cov.diagonal().sqrt())
    errors = torch.stack(errors)
    assert errors.mean(0).abs().max() < 4.5 / 600**0.5
    assert (errors.std(0) - 1).abs().max() < 4.5 / (2 * 600) ** 0.5


@pytest.mark.parametrize("law", ["log_uniform", "uniform"])
def test_trial_count_law(law):
    low, high, n = 4, 40, 20_000
    simulator = sbiplug.make_simulator(
        "gaussian_sets", min_trials=low, max_trials=high, trial_law=law
    )
    x = simulator.simulate(simulator.sample_prior(n, seed=0), seed=1)
    counts = torch.bincount(set_sizes(x))
    k = torch.arange(low, high + 1, dtype=torch.float64)
    if law == "uniform":
        expected = torch.full_like(k, 1.0 / len(k))
    else:  # P(k) = log((k + 1) / k) / log((high + 1) / low)
        expected = torch.log((k + 1) / k) / torch.log(torch.tensor((high + 1) / low))
    observed = counts[low:].double()
    assert len(observed) == len(k) and int(counts[:low].sum()) == 0
    chi2 = float(((observed - n * expected) ** 2 / (n * expected)).sum())
    # 36 degrees of freedom: 80 is beyond the 0.9999 quantile (76.4)
    assert chi2 < 80
    with pytest.raises(ValueError, match="trial_law must be one of 'uniform', 'log_uniform'"):
        sbiplug.make_simulator("gaussian_sets", trial_law="poisson")


def test_format_observations_and_errors():
    simulator = sbiplug.make_simulator("gaussian_sets", min_trials=5, max_trials=10)
    padded = simulator.format_observations([torch.randn(5, 2), torch.randn(10, 2).tolist()])
    assert padded.shape == (2, 10, 2) and set_sizes(padded).tolist() == [5, 10]
    flat = simulator.format_observations([list(range(12))])  # a flat row: 6 trials of 2
    assert set_sizes(flat).tolist() == [6]
    with pytest.raises(SetShapeError, match="has 4 trials; this model covers 5 to 10"):
        simulator.format_observations([torch.randn(4, 2)])
    with pytest.raises(SetShapeError, match="dimension 2"):
        simulator.format_observations([torch.randn(6, 3)])
    with pytest.raises(SetShapeError, match="not a whole number of elements"):
        simulator.format_observations([[1.0, 2.0, 3.0] * 3])


class _Exact:
    """The exact posterior of a set simulator, with sbi's ``sample`` signature."""

    def __init__(self, simulator):
        self.simulator = simulator

    def sample(self, shape, x, show_progress_bars=False):
        return self.simulator.reference_posterior(x[0], shape[0], seed=abs(int(x.nansum() * 1e3)))


def test_calibration_by_trial_count_of_the_exact_posterior():
    simulator = sbiplug.make_simulator("mixed_effects", min_trials=5, max_trials=40)
    report = calibration_by_trial_count(
        _Exact(simulator), simulator, [5, 40], num_simulations=150, num_samples=100
    )
    for counts in report.values():
        assert min(counts["ks_p_value"]) > 1e-3
        # 150 replicates of a 0.9 coverage: 4 binomial standard errors
        assert all(abs(c - 0.9) < 4 * (0.09 / 150) ** 0.5 for c in counts["coverage_90"])
