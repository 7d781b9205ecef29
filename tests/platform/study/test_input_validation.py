"""Validation before work (issue 22): options, observations, true parameters, budgets, folders.

Each test reproduces a defect of the issue through the public API; the CLI's side of the same
defects is in ``tests/platform/test_cli_errors.py``.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, ClassVar

import numpy as np
import pytest
import torch
from study_toys import GaussianToy
from torch import Tensor

import sbiplug
from sbiplug import SimulatorSpec
from sbiplug import study as study_module
from sbiplug.study import Study, StudyError


def _quiet_study(*args: Any, **kwargs: Any) -> Study:
    kwargs.setdefault("show_progress_bars", False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a small budget
        return Study(*args, **kwargs)


def test_a_simulator_option_typo_names_the_closest_option():
    with pytest.raises(TypeError, match="unknown option 'dimm'; did you mean 'dim'"):
        sbiplug.make_simulator("gaussian_linear", dimm=2)
    with pytest.raises(StudyError, match=r"simulator 'gaussian_linear'.*'dimm'.*'dim'"):
        _quiet_study("gaussian_linear", "npe", simulator_options={"dimm": 2})
    with pytest.raises(
        StudyError, match=r"simulator 'gaussian_linear'.*dim must be a positive int"
    ):
        _quiet_study("gaussian_linear", "npe", simulator_options={"dim": -4})


@pytest.mark.parametrize(
    ("where", "options", "message"),
    [
        ("estimator_options", {"hidden_features": "wide"}, "hidden_features must be a positive"),
        ("estimator_options", {"hidden_features": -4}, "hidden_features must be a positive"),
        ("train_options", {"learning_rate": "fast"}, "learning_rate must be a positive finite"),
        ("train_options", {"max_num_epochs": -1}, "max_num_epochs must be a positive int"),
        ("train_options", {"training_batch_size": 0}, "training_batch_size must be a positive"),
        ("posterior_options", {"sample_with": "magic"}, "sample_with must be one of"),
    ],
)
def test_bad_estimator_options_fail_when_the_study_is_built(where, options, message):
    toy = GaussianToy()
    with pytest.raises(StudyError, match=message):
        _quiet_study(toy, "npe", num_simulations=1000, **{where: options})
    assert toy.rows_simulated <= 2  # the dry run, no more


def test_nan_observations_fail_before_any_simulation():
    toy = GaussianToy()
    study = _quiet_study(toy, "npe", num_simulations=5000)
    before = toy.rows_simulated
    with pytest.raises(StudyError, match="observations must be finite; row 1 holds NaN"):
        study.run(observations=torch.tensor([[0.0, 0.1], [math.nan, 0.2]]))
    with pytest.raises(StudyError, match="observations must be finite"):
        study.run(observations=[[math.inf, 0.0]])
    with pytest.raises(StudyError, match=r"observations must have shape \(n, 2\)"):
        study.run(observations=torch.zeros(2, 3))
    with pytest.raises(StudyError, match="observations must be rows of equal length"):
        study.run(observations=[[0.0, 1.0], [2.0]])
    with pytest.raises(StudyError, match="observations must be an array of numbers"):
        study.run(observations=[["a", 1.0]])
    assert toy.rows_simulated == before


def test_true_parameters_outside_the_prior_support_fail_before_any_simulation():
    study = _quiet_study("two_moons", "npe", num_simulations=5000)
    with pytest.raises(StudyError) as error:
        study.run(true_parameters=[[0.0, 0.5], [2.0, 0.5]])
    message = str(error.value)
    assert "true_parameters row 1 [2, 0.5] lies outside the support" in message
    assert "'two_moons'" in message and "[-1, 1]" in message
    with pytest.raises(StudyError, match="true_parameters must be finite"):
        study.run(true_parameters=[[math.nan, 0.0]])


def test_support_falls_back_to_a_finite_log_prob():
    from sbiplug.study_inputs import inside_support

    class NoSupport(torch.distributions.Distribution):
        arg_constraints: ClassVar[dict] = {}

        @property
        def support(self):
            raise NotImplementedError

        def log_prob(self, value: Tensor) -> Tensor:
            return torch.where(value[:, 0] > 0, 0.0, -math.inf)

    theta = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    assert inside_support(NoSupport(validate_args=False), theta).tolist() == [True, False]


class _AllNaN(GaussianToy):
    name = "all_nan"

    def _simulate(self, theta: Tensor, rng: np.random.Generator) -> Tensor:
        return torch.full((len(theta), 2), math.nan)


def test_a_simulator_returning_only_nan_is_a_clear_error_naming_it():
    study = _quiet_study(_AllNaN(), "npe", num_simulations=200)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(StudyError, match="simulator 'all_nan' returned NaN or inf for all 200"):
            study.run(observations=torch.zeros(1, 2))


def test_a_tiny_budget_warns():
    with pytest.warns(study_module.SmallBudgetWarning, match="num_simulations = 3 is very small"):
        Study(GaussianToy(), "npe", num_simulations=3, show_progress_bars=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", study_module.SmallBudgetWarning)
        Study(GaussianToy(), "npe", num_simulations=1000, show_progress_bars=False)


def test_a_study_folder_that_is_a_file_is_refused(tmp_path):
    path = tmp_path / "taken"
    path.write_text("")
    with pytest.raises(StudyError, match="is a file, not a folder"):
        _quiet_study(GaussianToy(), "npe", folder=path)


def test_a_custom_factory_and_a_plugin_simulator_are_checked_too(register_plugin):
    def factory(prior, *, num_units: int = 8):
        return sbiplug.make_estimator("npe", prior, hidden_features=num_units)

    with pytest.raises(StudyError, match="estimator factory: num_units must be a positive"):
        _quiet_study(GaussianToy(), factory, estimator_options={"num_units": 0})

    def make(*, noise: float = 1.0, num_bins: int = 4) -> GaussianToy:
        return GaussianToy()

    class Plugin:
        @sbiplug.hookimpl
        def register_simulators(self):
            yield SimulatorSpec(name="checked_toy", factory=make, has_reference_posterior=True)

    register_plugin(Plugin(), "checked_toy_plugin")
    with pytest.raises(StudyError, match=r"noise must be a finite number, got inf"):
        _quiet_study("checked_toy", "npe", simulator_options={"noise": math.inf})
    with pytest.raises(StudyError, match=r"num_bins must be a positive int, got 0"):
        _quiet_study("checked_toy", "npe", simulator_options={"num_bins": 0})
