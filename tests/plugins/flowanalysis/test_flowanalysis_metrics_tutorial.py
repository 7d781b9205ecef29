"""Tutorial 16 (entropic metrics) runs end to end with tiny budgets and shows its points."""

from __future__ import annotations

import math
import runpy
from pathlib import Path

import matplotlib
import pytest

TUTORIAL = Path(__file__).resolve().parents[3] / "tutorials" / "16_entropic_metrics.py"


@pytest.mark.filterwarnings("ignore:Maximum number of epochs:UserWarning")
def test_tutorial_runs_quick(monkeypatch):
    matplotlib.use("Agg")
    monkeypatch.setenv("SBIPLUG_QUICK", "1")
    namespace = runpy.run_path(str(TUTORIAL), run_name="__main__")
    # 1. the closed forms of a linear decoder
    metrics, norms = namespace["metrics"], namespace["norms"]
    expected = 0.5 * (1 + math.log(2 * math.pi)) + norms.log().double()
    assert float((metrics.spectrum - expected).abs().max()) < 1e-5
    # 2. the product-only model is a ridge: one direction collapses, across the ridge
    ridge = namespace["result"].data
    assert ridge["effective_dimension"].values.tolist() == [1, 1]
    axis = ridge["principal_direction"].values[0, 1]
    gradient = namespace["true_theta"][0].flip(0) / namespace["true_theta"][0].norm()
    assert abs(float(axis @ gradient.numpy())) > 0.9
    # 3. the identified control keeps both directions
    control = namespace["control"].diagnostics["entropic_metrics"].data
    assert control["effective_dimension"].values.tolist() == [2, 2]
    # 4. the regulariser leaves the posterior (entropy) alone and lowers the total correlation
    plain, regularised = namespace["runs"]["npe"], namespace["runs"]["npe_total_correlation"]
    assert abs(plain.entropy - regularised.entropy) < 0.2
    assert regularised.total_correlation < 0.5 * plain.total_correlation
