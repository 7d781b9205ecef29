"""A report degrades, never fails whole: missing diagnostic plugins and undrawable figures."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

import sbiplug
from sbiplug.diagnostic import Diagnostic, DiagnosticResult
from sbiplug.plotting import save_figures
from sbiplug.plugins import PluginManager, reset_plugin_manager
from sbiplug.results import StudyResult
from sbiplug.toolkit.figures import figure_and_axes


class SpreadCheck(Diagnostic):
    """A throw-away plugin's diagnostic: the posterior sd of each observation."""

    name = "spread_check"

    def run(self, context):
        sd = context.posterior_samples.std(dim=1).numpy()  # (observation, parameter)
        data = xr.Dataset({"posterior_sd": (("observation", "parameter"), sd)})
        return DiagnosticResult(
            name=self.name, statistic=float(sd.max()), data=data, message="largest posterior sd"
        )

    def plot(self, result, ax=None):
        figure, ax = figure_and_axes(ax)
        ax.plot(np.ravel(result.data["posterior_sd"].values), "o")
        return figure


class SpreadPlugin:
    @sbiplug.hookimpl
    def register_diagnostics(self):
        yield sbiplug.DiagnosticSpec(name="spread_check", factory=SpreadCheck)


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    """A two_moons study with the throw-away plugin's diagnostic, saved."""
    manager = PluginManager()
    manager.register(SpreadPlugin(), "spread")
    previous = reset_plugin_manager(manager)
    try:
        study = sbiplug.Study(
            "two_moons",
            num_simulations=200,
            diagnostics=["spread_check"],
            estimator_options={"hidden_features": 8, "num_transforms": 1},
            train_options={"max_num_epochs": 2},
            show_progress_bars=False,
        )
        result = study.run(num_observations=2, num_posterior_samples=50, num_predictive_draws=0)
        folder = tmp_path_factory.mktemp("spread") / "result"
        result.save(folder)
        loaded = StudyResult.load(folder, load_estimator=False)
        figures = loaded.save_figures(folder.parent / "with-plugin")
        assert "diagnostic_spread_check.png" in {path.name for path in figures}
    finally:
        reset_plugin_manager(previous)
    return folder


def test_report_without_the_diagnostic_plugin_writes_the_rest(saved, tmp_path):
    out = tmp_path / "report"
    completed = subprocess.run(
        [sys.executable, "-m", "sbiplug", "report", str(saved), "--figures", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    summary = (out / "summary.txt").read_text()
    assert completed.stdout.startswith(summary)
    lines = summary.splitlines()
    row = next(i for i, line in enumerate(lines) if line.strip().startswith("spread_check "))
    assert "unavailable here" in lines[row + 1] and "unknown diagnostic" in lines[row + 1]
    assert lines[row + 2].strip().startswith("stored: statistic")
    assert lines[row + 3].strip().startswith("posterior_sd(observation=2, parameter=2): min")
    assert "posterior of observation 1:" in summary
    figures = {path.name for path in (out / "figures").iterdir()}
    assert figures == {"posterior_pair.png"}
    assert "figure 'diagnostic_spread_check' not drawn" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_one_failing_figure_does_not_cost_the_others(tmp_path, caplog):
    import matplotlib.pyplot as plt

    result = StudyResult(
        simulator=None,
        estimator=None,
        samples=torch.randn(1, 1, 50, 2),
        observations=torch.zeros(1, 2),
    )
    broken = DiagnosticResult(name="no_such_diagnostic", statistic=1.0, message="stored only")
    mine = plt.figure()  # a figure of the caller's: must survive
    with caplog.at_level(logging.WARNING, logger="sbiplug"):
        paths = save_figures(result.to_datatree(), tmp_path, diagnostics={"broken": broken})
    assert [path.name for path in paths] == ["posterior_pair.png"]
    assert "figure 'diagnostic_broken' not drawn" in caplog.text
    assert plt.fignum_exists(mine.number)
