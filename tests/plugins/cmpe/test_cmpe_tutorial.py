"""The CMPE tutorial runs end to end with tiny budgets (SBIPLUG_QUICK=1)."""

from __future__ import annotations

import runpy
from pathlib import Path

TUTORIAL = Path(__file__).parents[3] / "tutorials" / "10_cmpe.py"


def test_tutorial_runs_quickly(monkeypatch):
    monkeypatch.setenv("SBIPLUG_QUICK", "1")
    namespace = runpy.run_path(str(TUTORIAL), run_name="__main__")
    assert len(namespace["step_scores"]) == len(namespace["STEP_GRID"])
    assert all(0.0 <= score <= 1.0 for score in namespace["step_scores"])
    assert namespace["results"]["CMPE (10 steps)"].shape == (namespace["NUM_DRAWS"], 2)
    assert namespace["figure"].axes
