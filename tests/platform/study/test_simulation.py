"""The simulation engine: seeding per chunk, executors, resume, invalid rows."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from study_toys import CrashingToy, GaussianToy, NaNToy

from sbiplug import make_simulator
from sbiplug.simulation import (
    InvalidSimulationWarning,
    SimulationFolderError,
    SimulationOptions,
    simulate_training_set,
)


def _options(**kw):
    return SimulationOptions(show_progress_bars=False, **kw)


def test_chunks_are_seeded_independently_of_execution_order():
    simulator = GaussianToy()
    first = simulate_training_set(simulator, 250, seed=3, options=_options(chunk_size=100))
    second = simulate_training_set(GaussianToy(), 250, seed=3, options=_options(chunk_size=100))
    other = simulate_training_set(GaussianToy(), 250, seed=4, options=_options(chunk_size=100))
    assert first.chunk_sizes == [100, 100, 50]
    assert first.theta.shape == (250, 2) and first.x.shape == (250, 2)
    assert torch.equal(first.theta, second.theta) and torch.equal(first.x, second.x)
    assert not torch.equal(first.theta, other.theta)
    # the data follow the model: x - theta ~ N(0, 0.25), so the residual sd is near 0.5
    residual_sd = float((first.x - first.theta).std())
    assert abs(residual_sd - 0.5) < 0.5 * 4 / np.sqrt(2 * 500)  # 4 standard errors of an sd


def test_resume_after_crash_loses_and_duplicates_nothing(tmp_path):
    folder = tmp_path / "simulations"
    options = _options(chunk_size=40, folder=folder)
    with pytest.raises(RuntimeError, match="simulated crash"):
        simulate_training_set(CrashingToy(crash_at=4), 200, seed=1, options=options)
    assert sorted(p.name for p in folder.glob("chunk_*.npz")) == [
        "chunk_000000.npz",
        "chunk_000001.npz",
        "chunk_000002.npz",
    ]
    assert not list(folder.glob(".*tmp")), "a temporary chunk file was left behind"

    resumed_simulator = GaussianToy()
    resumed = simulate_training_set(resumed_simulator, 200, seed=1, options=options)
    assert resumed.num_resumed == 120
    assert resumed_simulator.rows_simulated == 80  # only the two missing chunks
    uninterrupted = simulate_training_set(
        GaussianToy(), 200, seed=1, options=_options(chunk_size=40)
    )
    assert torch.equal(resumed.theta, uninterrupted.theta)
    assert torch.equal(resumed.x, uninterrupted.x)
    assert len(torch.unique(resumed.theta, dim=0)) == 200  # no row twice

    again = GaussianToy()
    simulate_training_set(again, 200, seed=1, options=options)
    assert again.rows_simulated == 0  # everything is on disk


def test_folder_of_another_study_is_refused(tmp_path):
    folder = tmp_path / "simulations"
    simulate_training_set(GaussianToy(), 50, seed=1, options=_options(chunk_size=25, folder=folder))
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["seed"] == 1 and manifest["chunk_size"] == 25
    with pytest.raises(SimulationFolderError, match="seed: 1 -> 2"):
        simulate_training_set(
            GaussianToy(), 50, seed=2, options=_options(chunk_size=25, folder=folder)
        )


def test_invalid_rows_are_dropped_and_counted():
    with pytest.warns(InvalidSimulationWarning, match=r"(\d+) of 400 simulations") as record:
        simulations = simulate_training_set(NaNToy(), 400, seed=0, options=_options())
    expected = int(
        (
            simulate_training_set(GaussianToy(), 400, seed=0, options=_options()).theta[:, 0] > 1
        ).sum()
    )
    assert simulations.num_invalid == expected > 0
    assert f"{expected} of 400" in str(record[0].message)
    assert len(simulations.theta) == 400 - expected
    assert torch.isfinite(simulations.x).all()


def test_dask_local_cluster_matches_local():
    from distributed import Client, LocalCluster

    simulator = make_simulator("two_moons")
    local = simulate_training_set(simulator, 300, seed=5, options=_options(chunk_size=50))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dask's port and resource notices
        with (
            LocalCluster(
                n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
            ) as cluster,
            Client(cluster) as client,
        ):
            distributed = simulate_training_set(
                simulator,
                300,
                seed=5,
                options=_options(chunk_size=50, executor="dask", client=client),
            )
            assert len(client.scheduler_info()["workers"]) == 2
    assert torch.equal(local.theta, distributed.theta)
    assert torch.equal(local.x, distributed.x)


def test_joblib_matches_local():
    from joblib import parallel_config

    simulator = make_simulator("two_moons")
    local = simulate_training_set(simulator, 200, seed=6, options=_options(chunk_size=20))
    # threads instead of loky processes: the same code path without importing torch twice more
    with parallel_config(backend="threading"):
        parallel = simulate_training_set(
            simulator,
            200,
            seed=6,
            options=_options(chunk_size=20, executor="joblib", num_workers=2),
        )
    assert torch.equal(local.theta, parallel.theta)
    assert torch.equal(local.x, parallel.x)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"chunk_size": 0}, "chunk_size must be a positive int"),
        ({"executor": "spark"}, "executor must be one of 'local', 'joblib', 'dask'"),
        ({"client": "tcp://x:1"}, "client= needs executor='dask'"),
    ],
)
def test_bad_options_are_named(options, message):
    with pytest.raises(ValueError, match=message):
        SimulationOptions(**options)
