"""Tutorial 14 runs end to end with tiny budgets."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

TUTORIAL = Path(__file__).resolve().parents[3] / "tutorials" / "14_ood.py"


@pytest.mark.filterwarnings("ignore:Maximum number of epochs:UserWarning")  # 1-epoch NLE
def test_tutorial_runs_quick(monkeypatch):
    monkeypatch.setenv("SBIPLUG_QUICK", "1")
    namespace = runpy.run_path(str(TUTORIAL), run_name="__main__")
    result = namespace["result"]
    assert result.name == "ood" and result.data.sizes["observation"] == 4
    # The reparameterised flow gives the same features while the likelihood moves.
    assert float((namespace["features_x"] - namespace["features_y"]).abs().max()) < 1e-3
    assert abs(float(namespace["shift"]) + 10 * 1.0986) < 1e-3
