"""A study on sets of different sizes: train once, observe any size in range, save and reload."""

from __future__ import annotations

import pytest
import torch

import sbiplug
from sbiplug.results import StudyResult
from sbiplug.study_inputs import StudyError
from sbiplug_context import set_estimator_options, set_sizes

SIMULATOR = {"min_trials": 5, "max_trials": 12}


def _study(**kwargs):
    simulator = sbiplug.make_simulator("gaussian_sets", **SIMULATOR)
    return sbiplug.Study(
        "gaussian_sets",
        "npe",
        num_simulations=1000,
        simulator_options=SIMULATOR,
        estimator_options=set_estimator_options("npe", simulator),
        show_progress_bars=False,
        seed=3,
        **kwargs,
    )


@pytest.mark.filterwarnings("ignore:Found .* NaN simulations")
def test_variable_size_study_round_trip(tmp_path):
    generator = torch.Generator().manual_seed(0)
    truth = torch.tensor([[0.5, -0.5], [-1.0, 0.3], [6.0, 6.0]])
    observations = [
        truth[0] + torch.randn(5, 2, generator=generator),
        truth[1] + torch.randn(12, 2, generator=generator),
        truth[2] + torch.randn(8, 2, generator=generator),  # far outside the prior
    ]
    with pytest.warns(UserWarning, match="environment_extrapolation"):
        result = _study().run(observations=observations, num_posterior_samples=2000)
    assert set_sizes(result.observations).tolist() == [5, 12, 8]
    simulator = result.simulator
    for i in (0, 1):  # in range: the posterior mean is near the exact one
        mean, cov = simulator.posterior_moments(result.observations[i])
        estimate = result.samples[i].reshape(-1, 2).mean(0).double()
        # within 0.5 exact posterior sd (an NPE on 1000 sets; the se of 2000 draws is 0.02 sd)
        assert ((estimate - mean).abs() / cov.diagonal().sqrt()).max() < 0.5
    extrapolation = result.diagnostics["environment_extrapolation"]
    flagged = extrapolation.data["flagged"].values.tolist()
    assert flagged == [0, 0, 1]
    folder = result.save(tmp_path / "study")
    loaded = StudyResult.load(folder)
    assert torch.equal(loaded.observations.nan_to_num(), result.observations.nan_to_num())
    assert loaded.diagnostics["environment_extrapolation"].data["flagged"].values.tolist() == [
        0,
        0,
        1,
    ]
    # the reloaded estimator rebuilds the set encoder by name and samples padded sets
    draws = loaded.posterior.sample((500,), x=result.observations[1:2], show_progress_bars=False)
    original = result.samples[1].reshape(-1, 2).mean(0)
    assert (draws.mean(0) - original).abs().max() < 0.15


def test_observations_outside_the_trained_range_are_refused_before_training():
    with pytest.raises(StudyError, match="has 3 trials; this model covers 5 to 12 trials"):
        _study().run(observations=[torch.randn(3, 2)])
    with pytest.raises(StudyError, match="has 13 trials"):
        _study().run(observations=[torch.randn(13, 2)])
    with pytest.raises(StudyError, match="dimension 2"):
        _study().run(observations=[torch.randn(6, 3)])


def test_cli_takes_observations_of_different_sizes(tmp_path, capsys):
    from sbiplug.cli import main

    path = tmp_path / "study.toml"
    # two sets as flat rows of different lengths (5 and 6 trials of 2); the second is too
    # short for a range of 6 to 12 trials, so the run stops before any simulation
    path.write_text(
        'simulator = { name = "gaussian_sets", options = { min_trials = 6, max_trials = 12 } }\n'
        'estimator = "npe"\nnum_simulations = 200\n'
        "[observations]\nvalues = [["
        + ", ".join(["0.5"] * 12)
        + "], ["
        + ", ".join(["0.1"] * 10)
        + "]]\n"
    )
    code = main(["run", str(path), "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert code != 0 and "set 1 has 5 trials; this model covers 6 to 12 trials" in err
