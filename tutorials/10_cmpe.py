# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Consistency model posterior estimation (CMPE)
#
# CMPE (Schmitt et al., *Consistency Models for Scalable and Fast Simulation-Based Inference*,
# NeurIPS 2024) trains a free-form network by consistency training, so that it maps noise to a
# posterior draw in one to a few network evaluations. It trades the exact density of a
# normalising flow (CMPE has no `log_prob`) for flexible networks and fast sampling.
#
# This tutorial trains CMPE, sbi's NPE (neural spline flow) and sbi's FMPE (flow matching,
# sampled with an ODE solver) on the two moons task, then compares
#
# 1. accuracy: C2ST against the analytic reference posterior (0.5 is perfect),
# 2. the accuracy/steps trade-off of CMPE: C2ST against the number of sampling steps,
# 3. speed: posterior samples per second.
#
# Set `SBIPLUG_QUICK=1` to run everything with tiny budgets (a smoke test, not a result).

# %%
import os
import time

import matplotlib.pyplot as plt
import torch
from sbi.inference import FMPE, NPE
from sbi.utils.metrics import c2st

import sbiplug
from sbiplug.toolkit import NullTracker

torch.set_num_threads(1)
QUICK = os.environ.get("SBIPLUG_QUICK") == "1"
NUM_SIMULATIONS = 300 if QUICK else 5000
# Every method trains at its defaults; the quick smoke run shortens all of them.
CMPE_TRAIN = {"num_steps": 200} if QUICK else {}
BASELINE_TRAIN = {"max_num_epochs": 2} if QUICK else {}
NUM_DRAWS = 100 if QUICK else 2000
STEP_GRID = [1, 2] if QUICK else [1, 2, 5, 10, 11, 20, 21, 30]
# sbi's C2ST (random forest, 5-fold); a tiny forest in the quick smoke run
C2ST_OPTIONS = {"classifier_kwargs": {"n_estimators": 5}} if QUICK else {}

# %% [markdown]
# ## Simulations
# Two moons: theta ~ U(-1, 1)^2; the posterior is a thin crescent (two of them for most
# observations). The simulator provides exact reference draws.

# %%
simulator = sbiplug.make_simulator("two_moons")
prior = simulator.prior
torch.manual_seed(0)
theta = prior.sample((NUM_SIMULATIONS,))
x = simulator.simulate(theta, seed=1)
x_o = simulator.simulate(torch.zeros(1, 2), seed=2)[0]
reference = simulator.reference_posterior(x_o, NUM_DRAWS, seed=3)

# %% [markdown]
# ## Training
# CMPE comes from the `sbiplug_cmpe` plugin, through the registry like any estimator. It is a
# plain sbi trainer: `append_simulations(theta, x).train()`, then `build_posterior()`. Its
# training length is fixed in optimiser steps before it starts, because the discretisation
# curriculum of consistency training depends on it, and there is no early stopping. Without
# options it takes `round(2000 * sqrt(n / 10))` steps for n training simulations (about 44k
# here); the default width of 64 keeps 10-step sampling about as cheap as a neural spline flow.

# %%
timings = {}
start = time.perf_counter()
cmpe = sbiplug.make_estimator("cmpe", prior)
cmpe.append_simulations(theta, x).train(**CMPE_TRAIN)
timings["CMPE"] = time.perf_counter() - start

start = time.perf_counter()
npe = NPE(prior, density_estimator="nsf", tracker=NullTracker(), show_progress_bars=False)
npe.append_simulations(theta, x).train(**BASELINE_TRAIN)
timings["NPE (nsf)"] = time.perf_counter() - start

start = time.perf_counter()
fmpe = FMPE(prior, tracker=NullTracker(), show_progress_bars=False)
fmpe.append_simulations(theta, x).train(**BASELINE_TRAIN)
timings["FMPE"] = time.perf_counter() - start
print({name: f"{seconds:.0f} s" for name, seconds in timings.items()})

# %% [markdown]
# ## Accuracy and speed
# `posterior.sample` is the same call for all three; CMPE's `log_prob` raises an error that
# points to sample-based diagnostics (SBC, TARP, C2ST) instead.

# %%
posteriors = {
    "CMPE (10 steps)": cmpe.build_posterior(steps=10),
    "NPE (nsf)": npe.build_posterior(),
    "FMPE (ODE)": fmpe.build_posterior(),
}
results = {}
for name, posterior in posteriors.items():
    torch.manual_seed(4)
    start = time.perf_counter()
    samples = posterior.sample((NUM_DRAWS,), x=x_o, show_progress_bars=False)
    seconds = time.perf_counter() - start
    results[name] = samples
    score = float(c2st(samples, reference, **C2ST_OPTIONS))
    print(f"{name:<16} C2ST {score:.3f}   {NUM_DRAWS / seconds:>10,.0f} samples/s")

try:
    posteriors["CMPE (10 steps)"].log_prob(reference[:3], x=x_o)
except NotImplementedError as error:
    print("log_prob:", error)

# %% [markdown]
# ## Accuracy against the number of sampling steps
# Each step is one network evaluation: denoise, re-noise to the next level of the Karras grid,
# denoise again. Levels that the training curriculum used (11, 21, ... intervals with
# s0 = 10) are natural choices; quality is not monotone in the number of steps.

# %%
step_scores, step_rates = [], []
for steps in STEP_GRID:
    posterior = cmpe.build_posterior(steps=steps)
    torch.manual_seed(5)
    start = time.perf_counter()
    samples = posterior.sample((NUM_DRAWS,), x=x_o, show_progress_bars=False)
    step_rates.append(NUM_DRAWS / (time.perf_counter() - start))
    step_scores.append(float(c2st(samples, reference, **C2ST_OPTIONS)))

figure, (ax_steps, ax_samples) = plt.subplots(1, 2, figsize=(10, 4))
ax_steps.plot(STEP_GRID, step_scores, "o-", label="CMPE")
for name, color in [("NPE (nsf)", "gray"), ("FMPE (ODE)", "black")]:
    baseline = float(c2st(results[name], reference, **C2ST_OPTIONS))
    ax_steps.axhline(baseline, ls="--", color=color, label=name)
ax_steps.set(xlabel="sampling steps", ylabel="C2ST (0.5 is ideal)", title="accuracy vs steps")
ax_steps.legend()
for name, samples in [("reference", reference), *results.items()]:
    ax_samples.scatter(*samples[:, :2].T, s=2, alpha=0.3, label=name)
ax_samples.set(xlabel="theta_1", ylabel="theta_2", title="posterior draws at x_o")
ax_samples.legend(markerscale=5)
figure.tight_layout()

for steps, score, rate in zip(STEP_GRID, step_scores, step_rates):
    print(f"{steps:>3} steps: C2ST {score:.3f}, {rate:>10,.0f} samples/s")

# %% [markdown]
# ## Take-aways
# - CMPE is an sbi trainer: `run_sbc`, `run_tarp` and `sample_batched` work unchanged.
# - Sampling costs `steps` network evaluations, so a few steps give thousands of samples per
#   second; FMPE's adaptive ODE solver needs far more evaluations per draw.
# - CMPE has no density: use sample-based checks (SBC, TARP, C2ST), not `log_prob`.
