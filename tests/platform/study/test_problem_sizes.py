"""Every problem size works: one parameter, one observation, many parameters, high-dimensional x."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from torch.distributions import MultivariateNormal

import sbiplug
from sbiplug.cli import main
from sbiplug.plotting import MAX_PAIR_PARAMETERS, SBC_COLUMNS

ONE_PARAMETER = """
seed = 2
num_simulations = 300
num_posterior_samples = 100
num_predictive_draws = 5
show_progress_bars = false

[simulator]
name = "gaussian_linear"
options = { dim = 1 }

[estimator]
name = "npe"
options = { hidden_features = 16, num_transforms = 1 }
train = { max_num_epochs = 2 }

[observations]
true_parameters = [[0.3]]

[diagnostics.sbc]
num_sbc_runs = 20
num_posterior_samples = 20
c2st = false

[diagnostics.tarp]
"""

SMALL = {
    "num_simulations": 300,
    "estimator_options": {"hidden_features": 16, "num_transforms": 1},
    "train_options": {"max_num_epochs": 2},
    "show_progress_bars": False,
}


def test_one_parameter_one_observation_runs_and_reports(tmp_path, capsys):
    study = tmp_path / "one.toml"
    study.write_text(ONE_PARAMETER)
    out = tmp_path / "out"
    assert main(["run", str(study), "--out", str(out)]) == 0
    figures = {path.name for path in (out / "figures").iterdir()}
    assert {"posterior_pair.png", "sbc_ecdf.png", "diagnostic_sbc.png", "diagnostic_tarp.png"} <= (
        figures
    )
    capsys.readouterr()
    assert main(["report", str(out), "--figures", str(tmp_path / "again")]) == 0
    assert "theta_1" in capsys.readouterr().out
    assert (tmp_path / "again" / "figures" / "posterior_pair.png").is_file()
    result = sbiplug.StudyResult.load(out / "result", load_estimator=False)
    figure = result.plot_pair()
    assert isinstance(figure, Figure)
    (axis,) = [axis for axis in figure.axes if axis.get_visible()]
    assert axis.get_xlabel() == "theta_1"
    (true_line,) = [line for line in axis.lines if line.get_label() == "true value"]
    assert true_line.get_xdata()[0] == pytest.approx(0.3)  # the true value is marked


def test_one_parameter_many_observations():
    result = sbiplug.Study("gaussian_linear", simulator_options={"dim": 1}, **SMALL).run(
        num_observations=3, num_posterior_samples=50, num_predictive_draws=0
    )
    assert result.samples.shape == (3, 4, 13, 1)  # 50 draws as 4 chains
    for observation in range(3):
        assert result.summary(observation).shape[0] == 1
        assert isinstance(result.plot_pair(observation), Figure)


@pytest.fixture(scope="module")
def many_parameters():
    study = sbiplug.Study(
        "gaussian_linear",
        simulator_options={"dim": 8},
        diagnostics={"sbc": {"num_sbc_runs": 10, "num_posterior_samples": 10, "c2st": False}},
        **SMALL,
    )
    return study.run(num_posterior_samples=50, num_predictive_draws=0)


def test_pair_plot_of_many_parameters_draws_a_readable_subset(many_parameters):
    figure = many_parameters.plot_pair()
    shown = MAX_PAIR_PARAMETERS
    assert f"{shown} of 8 parameters" in figure.get_suptitle()
    assert len([axis for axis in figure.axes if axis.get_visible()]) <= shown * shown
    assert max(figure.get_size_inches()) < 16  # a page, not a poster
    chosen = many_parameters.plot_pair(var_names=["theta_8", "theta_2"])
    assert "2 of 8 parameters (theta_8, theta_2)" in chosen.get_suptitle()
    with pytest.raises(ValueError, match="no parameters \\['theta_9'\\]"):
        many_parameters.plot_pair(var_names=["theta_9"])


def test_sbc_plot_of_many_parameters_wraps_into_rows(many_parameters):
    figure = many_parameters.plot_sbc()
    visible = [axis for axis in figure.axes if axis.get_visible()]
    assert [axis.get_title() for axis in visible] == [f"theta_{i}" for i in range(1, 9)]
    width, height = figure.get_size_inches()
    assert width == pytest.approx(3.2 * SBC_COLUMNS) and height == pytest.approx(6)


def test_high_dimensional_x(tmp_path):
    prior = MultivariateNormal(torch.zeros(2), torch.eye(2))

    def simulate(theta):
        noise = torch.randn(len(theta), 200, generator=torch.Generator().manual_seed(0))
        return theta.repeat(1, 100) + 0.3 * noise

    study = sbiplug.Study((prior, simulate), diagnostics=["ppc", "tarp"], **SMALL)
    result = study.run(num_observations=2, num_posterior_samples=50, num_predictive_draws=5)
    assert result.observations.shape == (2, 200)
    assert result.posterior_predictive.shape == (2, 4, 2, 200)  # 5 draws over 4 chains
    paths = result.save_figures(tmp_path)
    assert {path.name for path in paths} == {
        "posterior_pair.png",
        "diagnostic_ppc.png",
        "diagnostic_tarp.png",
    }
    result.save(tmp_path / "result")
    loaded = sbiplug.StudyResult.load(tmp_path / "result")
    np.testing.assert_array_equal(loaded.observations.numpy(), result.observations.numpy())
