"""tutorials/11_misspecification.py runs end to end in quick mode and reaches its conclusions."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

TUTORIAL = Path(__file__).parents[3] / "tutorials" / "11_misspecification.py"


def test_tutorial_detects_the_shifted_observations(monkeypatch):
    monkeypatch.setenv("SBIPLUG_QUICK", "1")
    with pytest.warns(UserWarning):
        namespace = runpy.run_path(str(TUTORIAL), run_name="__main__")
    assert namespace["result_bad"].rejected
    assert namespace["result_bad"].num_observed == 5
    assert namespace["result_single"].num_observed == 1
    assert namespace["diagnostic_result"].passed is False
    assert namespace["figure"].axes
    assert namespace["result_tails"].rejected and namespace["projection"].axes
    assert "data block" in namespace["result_tails"].message
