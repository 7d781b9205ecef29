"""Tutorial 19 runs end to end with tiny budgets."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

TUTORIAL = Path(__file__).resolve().parents[3] / "tutorials" / "19_variable_trials.py"


@pytest.mark.filterwarnings("ignore:Maximum number of epochs:UserWarning")  # 20-epoch NPE
@pytest.mark.filterwarnings("ignore:automatic diagnostic:UserWarning")
def test_tutorial_runs_quick(monkeypatch):
    monkeypatch.setenv("SBIPLUG_QUICK", "1")
    namespace = runpy.run_path(str(TUTORIAL), run_name="__main__")
    result = namespace["result"]
    assert result.diagnostics["environment_extrapolation"].data["flagged"].values.tolist() == [
        0,
        0,
        0,
        1,
    ]
    verdicts = namespace["verdicts"]
    assert verdicts["both"].context_can_help
    assert not verdicts["no_input_shift"].c1 and not verdicts["no_slope_shift"].c2
    # environments with shifts 2-3x the training range are all flagged even after 15 epochs
    score, context = namespace["score"], namespace["context"]
    assert bool(score.flag(context.embed(namespace["far_sets"])).all())
