"""The ledger of a simulation folder: manifest fields, chunk checksums, prior fingerprints."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from study_toys import GaussianToy
from torch.distributions import Independent, MultivariateNormal, Normal

from sbiplug.ledger import file_sha256, manifest_differences, prior_fingerprint
from sbiplug.simulation import (
    CorruptChunkWarning,
    SimulationFolderError,
    SimulationOptions,
    simulate_training_set,
)


def test_manifest_records_what_determines_the_simulations(tmp_path):
    folder = tmp_path / "simulations"
    options = SimulationOptions(chunk_size=25, folder=folder, show_progress_bars=False)
    simulate_training_set(GaussianToy(), 60, seed=1, options=options)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["simulator"] == "gaussian_toy"
    assert manifest["prior"] == prior_fingerprint(GaussianToy().prior)
    assert (manifest["seed"], manifest["num_simulations"]) == (1, 60)
    assert (manifest["chunk_size"], manifest["num_chunks"]) == (25, 3)
    for path in folder.glob("chunk_*.npz"):
        assert (folder / f"{path.name}.sha256").read_text().strip() == file_sha256(path)
    with pytest.raises(SimulationFolderError, match=r"num_simulations: 60 -> 70"):
        simulate_training_set(GaussianToy(), 70, seed=1, options=options)


def test_corrupt_chunk_in_the_library_api(tmp_path):
    folder = tmp_path / "simulations"
    options = SimulationOptions(chunk_size=20, folder=folder, show_progress_bars=False)
    first = simulate_training_set(GaussianToy(), 100, seed=1, options=options)
    (folder / "chunk_000003.npz").write_bytes(b"not a chunk")
    again = GaussianToy()
    with pytest.warns(CorruptChunkWarning, match=r"1 of 5 simulation chunks"):
        resumed = simulate_training_set(again, 100, seed=1, options=options)
    assert again.rows_simulated == 20 and resumed.num_resumed == 80
    assert torch.equal(resumed.x, first.x)
    # a chunk without its checksum (killed between the two writes) is unfinished: no warning
    (folder / "chunk_000001.npz.sha256").unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("error", CorruptChunkWarning)
        assert simulate_training_set(GaussianToy(), 100, seed=1, options=options).num_resumed == 80


def test_prior_fingerprint_sees_parameters_not_history():
    def mvn(loc=0.0):
        return MultivariateNormal(torch.full((2,), loc), torch.eye(2))

    used = mvn()
    assert used.covariance_matrix is not None and used.precision_matrix is not None  # cached
    state = torch.get_rng_state()
    assert prior_fingerprint(used) == prior_fingerprint(mvn())
    assert torch.equal(torch.get_rng_state(), state)  # the global generator is left alone
    assert prior_fingerprint(mvn(0.1)) != prior_fingerprint(mvn())
    normal = Independent(Normal(torch.zeros(2), torch.ones(2)), 1)
    assert prior_fingerprint(normal) != prior_fingerprint(mvn())  # same law, other class
    wider = Independent(Normal(torch.zeros(2), np.float32(1.001) * torch.ones(2)), 1)
    assert prior_fingerprint(wider) != prior_fingerprint(normal)


def test_differences_name_each_field():
    stored = {"seed": 1, "simulator_options": {"sigma": 1.0, "dim": 2}, "prior": "a" * 64}
    current = {"seed": 1, "simulator_options": {"sigma": 5.0, "rate": 3}, "prior": "b" * 64}
    assert manifest_differences(stored, current) == [
        "simulator_options.dim: 2 -> (unset)",
        "simulator_options.rate: (unset) -> 3",
        "simulator_options.sigma: 1.0 -> 5.0",
        f"prior: {'a' * 12} -> {'b' * 12}",
    ]


def test_unverifiable_folders_are_refused(tmp_path):
    folder = tmp_path / "simulations"
    options = SimulationOptions(chunk_size=25, folder=folder, show_progress_bars=False)
    simulate_training_set(GaussianToy(), 50, seed=1, options=options)
    manifest = folder / "manifest.json"
    stored = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**stored, "format": 1}))
    with pytest.raises(SimulationFolderError, match=r"manifest format 1, this one writes 2"):
        simulate_training_set(GaussianToy(), 50, seed=1, options=options)
    manifest.write_text("{ torn")
    with pytest.raises(SimulationFolderError, match=r"no readable manifest.json"):
        simulate_training_set(GaussianToy(), 50, seed=1, options=options)
    for path in folder.glob("chunk_*"):
        path.unlink()
    # without chunks nothing can be mixed: the folder takes the new manifest
    simulate_training_set(GaussianToy(), 50, seed=1, options=options)
    assert json.loads(manifest.read_text()) == stored
