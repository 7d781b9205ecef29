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
# # Variable numbers of trials, context, and a warning when inference extrapolates
#
# Many simulators produce a *set* of i.i.d. trials per experiment, and the number of trials
# varies: subjects in a study, cells in a dish, repeated measurements. `sbiplug_context` trains
# one estimator for every trial count in a range with a permutation-invariant set encoder, and
# uses the same machinery as *context* for prediction across environments (Müller, Kühmichel,
# Rohbeck, Radev, Köthe, arXiv 2312.10107).
#
# This tutorial
#
# 1. pads sets of different sizes and checks that the encoders ignore the padding,
# 2. runs one study on `gaussian_sets` (5 to 50 trials) with observations of 5, 20 and 50 trials,
#    compares the posteriors with the exact ones and reads the automatic
#    `environment_extrapolation` diagnostic,
# 3. checks calibration per trial count,
# 4. tests the two necessary criteria for context on a linear-Gaussian model with
#    environments, compares context-aware prediction with ERM, and detects out-of-range
#    environments.
#
# Set `SBIPLUG_QUICK=1` to run everything with tiny budgets (a smoke test, not a result).

# %%
import os
import warnings

import matplotlib.pyplot as plt
import torch

import sbiplug
from sbiplug_context import (
    ContextRegressor,
    EnvironmentSCM,
    EnvironmentScore,
    calibration_by_trial_count,
    check_criteria,
    choose_model,
    pad_sets,
    random_sets,
    set_estimator_options,
    set_sizes,
)

QUICK = os.environ.get("SBIPLUG_QUICK") == "1"
NUM_SIMULATIONS = 500 if QUICK else 3000
torch.manual_seed(0)

# %% [markdown]
# ## 1. Sets of different sizes
#
# A batch of sets is one tensor `(batch, max_trials, d)`; a set with fewer trials has NaN rows
# (sbi's own convention for missing trials). The encoders mask them, so a set and the same set
# padded, shuffled or batched with others give the same summary.

# %%
encoder = sbiplug.make_embedding_net("set_transformer", element_dim=2, max_trials=8).eval()
s = torch.randn(3, 2)
batch = pad_sets([s, torch.randn(8, 2)], max_trials=8)
shuffled = pad_sets([s[[2, 0, 1]]], max_trials=8)
print(batch.shape, set_sizes(batch).tolist())
with torch.no_grad():
    print("largest difference:", float((encoder(batch)[0] - encoder(shuffled)[0]).abs().max()))

# %% [markdown]
# ## 2. One study, observations of any size in range
#
# `set_estimator_options` puts a registered set encoder into the estimator options and switches
# the estimator's own z-scoring of x off (NaN cannot be z-scored; the encoder standardises its
# input itself). The study accepts a list of observed sets of different sizes.

# %%
simulator = sbiplug.make_simulator("gaussian_sets", min_trials=5, max_trials=50)
options = set_estimator_options("npe", simulator)
print(options)
study = sbiplug.Study(
    "gaussian_sets",
    "npe",
    num_simulations=NUM_SIMULATIONS,
    simulator_options={"min_trials": 5, "max_trials": 50},
    estimator_options=options,
    train_options={"max_num_epochs": 20, "training_batch_size": 50} if QUICK else {},
    show_progress_bars=False,
    seed=1,
)
mu = torch.tensor([[0.8, -0.4], [-0.6, 0.2], [0.3, 0.9], [6.0, -6.0]])
observations = [mu[i] + torch.randn(k, 2) for i, k in enumerate([5, 20, 50, 20])]
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    result = study.run(observations=observations, num_posterior_samples=1000)
print(
    "warnings:",
    [str(w.message)[:90] for w in caught if "extrapolation" in str(w.message)],
)
print(result.diagnostics["environment_extrapolation"].message)

# %%
figure, axes = plt.subplots(1, 4, figsize=(13, 3.2))
for i, ax in enumerate(axes):
    draws = result.samples[i].reshape(-1, 2)
    exact = simulator.reference_posterior(result.observations[i], 1000, seed=i)
    ax.scatter(*exact.T, s=2, alpha=0.3, label="exact")
    ax.scatter(*draws.T, s=2, alpha=0.3, label="NPE, one network")
    ax.set_title(f"{int(set_sizes(result.observations[i : i + 1]))} trials")
axes[0].legend(markerscale=5, fontsize=8)
axes[-1].set_title("20 trials, far outside the prior (flagged)")
figure.tight_layout()

# %% [markdown]
# Sizes outside the trained range are refused before any simulation:

# %%
try:
    study.run(observations=[torch.randn(60, 2)])
except ValueError as error:
    print(error)

# %% [markdown]
# ## 3. Calibration per trial count
#
# Simulation-based calibration at each fixed trial count: uniform ranks (KS p-value not tiny)
# and 90% intervals that cover about 90% of the time.

# %%
report = calibration_by_trial_count(
    result.posterior,
    simulator,
    [5, 20, 50],
    num_simulations=20 if QUICK else 200,
    num_samples=100,
)
for k, row in report.items():
    print(k, "KS p:", [round(p, 3) for p in row["ks_p_value"]], "coverage:", row["coverage_90"])

# %% [markdown]
# ## 4. Context for prediction across environments
#
# A linear-Gaussian model: environment e shifts the inputs, X ~ N(a_e, I), and the slope,
# Y = (w + γ a_e)ᵀ X + ε. Context (a set S of inputs from the same environment) can help only if
# the environment is inferable from S (C1) and tells something about Y given X (C2). Each
# variant below switches one of them off.

# %%
verdicts = {}
for variant in ("both", "no_input_shift", "no_slope_shift"):
    scm = EnvironmentSCM(variant)
    x, y = scm.sample(scm.environments(20, seed=0), 200, seed=1)
    verdicts[variant] = check_criteria(x, y)
    print(f"{variant}: {verdicts[variant].verdict}\n")

# %% [markdown]
# Where both hold, f(X, φ(S)) with a DeepSets φ learned jointly beats ERM on held-out
# environments; the embedding φ(S) then flags environments outside the training range.

# %%
scm = EnvironmentSCM("both")
num_env, epochs = (64, 15) if QUICK else (256, 150)
x, y = scm.sample(scm.environments(num_env, seed=0), 200, seed=1)
context = ContextRegressor(2).fit(x, y, epochs=epochs)
erm = ContextRegressor(2, use_context=False).fit(x, y, epochs=epochs)
xt, yt = scm.sample(scm.environments(100, seed=2), 200, seed=3)
sets = random_sets(xt[:, 100:], 10, 100, seed=4)
mse_context = float((context.predict(xt[:, :100], sets) - yt[:, :100]).square().mean())
mse_erm = float((erm.predict(xt[:, :100]) - yt[:, :100]).square().mean())
print(f"held-out environments: MSE context {mse_context:.3f}, ERM {mse_erm:.3f}")

score = EnvironmentScore(false_alarm=0.05).fit(context.embed(random_sets(x, 10, 100, seed=5)))
score.calibrate(context.embed(sets[:50]))
far = scm.environments(50, outside=True, seed=6)
far_sets = random_sets(scm.sample(far, 100, seed=7)[0], 10, 100, seed=8)
print("false alarms:", float(score.flag(context.embed(sets[50:])).double().mean()))
print(
    "detected out-of-range environments:",
    float(score.flag(context.embed(far_sets)).double().mean()),
)
flagged = bool(score.flag(context.embed(far_sets[:1]))[0])
print(choose_model(verdicts["both"], flagged=flagged))
