"""Tutorial 18 runs end to end with tiny budgets."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest
import torch

TUTORIAL = Path(__file__).resolve().parents[3] / "tutorials" / "18_density_distances.py"


@pytest.mark.filterwarnings("ignore::UserWarning")  # tiny budgets: few epochs, few simulations
def test_tutorial_runs_quick(monkeypatch):
    monkeypatch.setenv("SBIPLUG_QUICK", "1")
    namespace = runpy.run_path(str(TUTORIAL), run_name="__main__")
    exact = namespace["exact"].distance(namespace["a"], namespace["b"])
    # Equal Euclidean lengths; crossing the gap between the bumps costs far more.
    assert float(exact[1]) > 2 * float(exact[0])
    assert namespace["modes"].num_modes == 2
    matrix = namespace["matrix"]
    assert torch.equal(matrix, matrix.T)
    assert namespace["modes_result"].data.sizes["observation"] == 2
    # Exact two_moons draws: two crescents apart from each other for both observations.
    assert namespace["exact_modes"].data["num_modes"].values.tolist() == [2, 2]
