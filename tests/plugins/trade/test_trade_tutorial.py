"""tutorials/12_trade.py runs end to end with tiny budgets (SBIPLUG_QUICK=1)."""

from __future__ import annotations

import runpy
from pathlib import Path

TUTORIAL = Path(__file__).resolve().parents[3] / "tutorials" / "12_trade.py"


def test_tutorial_runs_quick(monkeypatch):
    monkeypatch.setenv("SBIPLUG_QUICK", "1")
    namespace = runpy.run_path(str(TUTORIAL), run_name="__main__")
    data = namespace["result"].data
    assert set(data["mean_trade"].dims) == {"alpha", "parameter"}
    assert namespace["figure"].axes  # the power-scaling plot was drawn
    assert namespace["axes"].shape == (2, 5)  # the grid of samples per condition
