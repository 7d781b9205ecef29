"""Tutorial 15 (injective summaries) runs end to end with tiny budgets."""

from __future__ import annotations

import runpy
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

TUTORIAL = Path(__file__).resolve().parents[3] / "tutorials" / "15_injective_summaries.py"


@pytest.mark.filterwarnings("ignore::UserWarning")  # tiny budgets; the drifted observations
def test_injective_summaries_tutorial_runs_quickly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SBIPLUG_QUICK", "1")
    plt.close("all")
    namespace = runpy.run_path(str(TUTORIAL), run_name="__main__")
    # the two drifted observations are flagged off the manifold (quick mode: a crude flow)
    assert namespace["result"].data["flagged"].values.tolist()[2:] == [1, 1]
    assert bool((namespace["before"] == namespace["after"]).all())
    assert len(plt.get_fignums()) == 2
    plt.close("all")
