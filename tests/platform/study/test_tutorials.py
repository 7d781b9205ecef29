"""Tutorials 01-03 run end to end in quick mode and leave what they promise."""

from __future__ import annotations

import runpy
import warnings
from pathlib import Path

import pytest
import torch

from sbiplug.plugins import reset_plugin_manager

TUTORIALS = Path(__file__).resolve().parents[3] / "tutorials"


@pytest.fixture
def quick(monkeypatch):
    monkeypatch.setenv("SBIPLUG_QUICK", "1")
    previous = reset_plugin_manager()  # tutorials may register plugins: keep them out of others
    yield
    reset_plugin_manager(previous)


def _run(name: str) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return runpy.run_path(str(TUTORIALS / name), run_name="__main__")


def test_first_study(quick, tmp_path):
    namespace = _run("01_first_study.py")
    result = namespace["result"]
    assert result.samples.shape == (1, 4, 50, 2)
    assert set(result.diagnostics) == {"sbc", "c2st_reference"}
    assert (tmp_path / "first-study" / "result.nc").is_file()
    assert torch.equal(namespace["loaded"].samples, result.samples)
    plain = namespace["plain_samples"]  # sbi's own NPE with sbiplug.density_estimator("nsf")
    assert plain.shape == (200, 2) and torch.isfinite(plain).all()


def test_simulator_plugin(quick):
    namespace = _run("02_write_a_simulator_plugin.py")
    assert namespace["info"].status == "loaded"
    result = namespace["result"]
    assert result.simulator.observation_shape == (6,)
    assert result.parameter_names == ["mean_1", "mean_2"]
    assert 0.0 <= result.diagnostics["c2st_reference"].statistic <= 1.0


def test_scale_out_with_dask(quick, tmp_path):
    namespace = _run("03_scale_out_with_dask.py")
    assert torch.equal(namespace["local"].x, namespace["on_cluster"].x)
    assert len(list((tmp_path / "dask-study" / "simulations").glob("chunk_*.npz"))) == 4
    assert namespace["again"].provenance["num_resumed_simulations"] == 400
