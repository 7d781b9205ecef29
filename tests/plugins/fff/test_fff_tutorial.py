"""Tutorial 13 (manifold posteriors) runs end to end with tiny budgets."""

from __future__ import annotations

import runpy
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

TUTORIAL = Path(__file__).parents[3] / "tutorials" / "13_manifold_posteriors.py"


def test_manifold_tutorial_runs_quickly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SBIPLUG_QUICK", "1")
    plt.close("all")
    namespace = runpy.run_path(str(TUTORIAL), run_name="__main__")
    # its draws lie on their manifolds and it drew the sphere and torus figures
    assert ((namespace["draws"].norm(dim=-1) - 1).abs() < 1e-5).all()
    torus = namespace["torus_simulator"].torus
    assert torus.contains(namespace["torus_draws"], atol=1e-5).all()
    assert ((namespace["new_directions"].norm(dim=-1) - 1).abs() < 1e-5).all()
    assert len(plt.get_fignums()) == 2
    plt.close("all")
