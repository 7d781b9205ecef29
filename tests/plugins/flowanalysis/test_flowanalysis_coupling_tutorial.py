"""Tutorial 17 runs end to end with tiny budgets."""

from __future__ import annotations

import runpy
from pathlib import Path

TUTORIAL = Path(__file__).resolve().parents[3] / "tutorials" / "17_coupling_flows.py"


def test_tutorial_runs_quick(monkeypatch):
    monkeypatch.setenv("SBIPLUG_QUICK", "1")
    namespace = runpy.run_path(str(TUTORIAL), run_name="__main__")
    results = namespace["results"]
    # The volume-preserving flow is flagged, the free-scale one is not.
    assert results["volume-preserving"].passed is False
    assert results["free scales"].passed is True
    history = namespace["ring_flow"].history
    assert all(b < a for a, b in zip(history["nll"][:-1], history["nll"][1:]))
    assert namespace["samples"].shape == (2000, 2)
