# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Scale out simulation with dask
#
# Simulation is often the expensive part of a study. `SimulationOptions` cuts the budget into
# chunks; each chunk's parameters and noise come from seeds spawned from the study seed, so
# the chunks can run anywhere, in any order, and the result is the same bit for bit: in this
# process, in joblib processes, or on a dask.distributed cluster. With a study folder, every
# finished chunk is written to disk at once, so a killed run resumes where it stopped.

# %%
import os
import time
import warnings

import torch
from distributed import Client, LocalCluster

import sbiplug
from sbiplug import SimulationOptions
from sbiplug.simulation import simulate_training_set

torch.set_num_threads(1)
QUICK = os.environ.get("SBIPLUG_QUICK") == "1"
NUM_SIMULATIONS = 400 if QUICK else 4000

# %% [markdown]
# ## A cluster
#
# On your laptop, a `LocalCluster` with one single-threaded worker process per core. On a real
# cluster, start a scheduler and workers (`dask scheduler`, `dask worker tcp://host:8786`, or
# dask-jobqueue on SLURM/PBS) and pass its address instead: nothing else changes.
# (Quick mode uses threads to start in a second.)

# %%
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # dask's notices about ports and memory
    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=not QUICK, dashboard_address=None
    )
client = Client(cluster)
print(client)

# %% [markdown]
# ## The same simulations, locally and on the cluster

# %%
simulator = sbiplug.make_simulator("two_moons")
start = time.perf_counter()
local = simulate_training_set(
    simulator, NUM_SIMULATIONS, seed=0, options=SimulationOptions(chunk_size=100)
)
local_seconds = time.perf_counter() - start

start = time.perf_counter()
on_cluster = simulate_training_set(
    simulator,
    NUM_SIMULATIONS,
    seed=0,
    options=SimulationOptions(chunk_size=100, executor="dask", client=client),
)
cluster_seconds = time.perf_counter() - start
assert torch.equal(local.theta, on_cluster.theta) and torch.equal(local.x, on_cluster.x)
print(f"identical: local {local_seconds:.2f} s, cluster {cluster_seconds:.2f} s")

# %% [markdown]
# (two moons costs microseconds per simulation, so the cluster only adds overhead here; with a
# simulator costing milliseconds or more per call, the workers divide the wall time:
# `benchmarks/study.py` measures it.)
#
# ## A whole study on the cluster, checkpointed
#
# Pass the options to a `Study` with a `folder`: chunks land in `folder/simulations` as they
# finish. Running the same study again (or `sbiplug run study.toml --resume` from the command
# line) loads the finished chunks and simulates only the missing ones.

# %%
study = sbiplug.Study(
    "two_moons",
    "npe",
    num_simulations=NUM_SIMULATIONS,
    estimator_options={"hidden_features": 16},
    train_options={"max_num_epochs": 2 if QUICK else 30},
    simulation=SimulationOptions(
        chunk_size=100, executor="dask", client=client, show_progress_bars=not QUICK
    ),
    folder="dask-study",
    seed=0,
    show_progress_bars=not QUICK,
)
result = study.run(num_posterior_samples=500)
print(len(os.listdir("dask-study/simulations")), "files in the simulation folder")

again = study.run(num_posterior_samples=500)  # every chunk is on disk now
assert again.provenance["num_resumed_simulations"] == NUM_SIMULATIONS
assert torch.equal(again.samples, result.samples)
print(result.summary())

# %% [markdown]
# In a study file the same reads:
#
# ```toml
# [simulation]
# chunk_size = 100
# executor = "dask"
# address = "tcp://scheduler:8786"   # omit for a temporary LocalCluster with num_workers
# num_workers = 2
# ```

# %%
client.close()
cluster.close()
