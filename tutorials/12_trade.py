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
# # TRADE: one flow for a whole family of distributions
#
# TRADE (Wahl et al., *Transfer of Distributions between External Conditions with Normalizing
# Flows*, arXiv 2410.19492) learns q(x | c) for a family p(x | c) ∝ exp(-E(x, c)) over a
# condition c (temperature, a coupling, a likelihood power) from samples at one base condition
# c0 plus the derivative of log p~ in c:
#
#     d log p(x | c) / dc = d log p~(x | c) / dc - E_p(.|c)[d log p~ / dc]
#
# The flow's own derivative (autograd in c) is pulled onto the right-hand side, whose expectation
# is estimated by self-normalised importance sampling with the flow as proposal.
#
# Part 1 learns the paper's 2-D Gaussian mixture raised to an inverse temperature beta in
# [0.16, 6.2] from samples at beta = 1. Part 2 uses TRADE on an SBI posterior: how do the
# posterior's mean and sd move when the likelihood (or the prior) is raised to a power alpha?
#
# Set `SBIPLUG_QUICK=1` to run everything with tiny budgets (a smoke test, not a result).

# %%
import os

import matplotlib.pyplot as plt
import numpy as np
import torch

import sbiplug
from sbiplug_trade import (
    TRADE,
    effective_sample_size,
    mode_mass_error,
    power_scaling_sensitivity,
)

torch.set_num_threads(1)
QUICK = os.environ.get("SBIPLUG_QUICK") == "1"
GMM_STEPS = 20 if QUICK else 2000  # the settings of benchmarks/trade.py (same model)
POWER_STEPS = 20 if QUICK else 1500
NUM_DRAWS = 300 if QUICK else 5000

# %% [markdown]
# ## 1. A Gaussian mixture across temperature
# `gmm_temperature` is registered by the plugin through the `register_targets` hook. It has an
# exact sampler (rejection sampling) for ground truth at every beta.

# %%
target = sbiplug.make_target("gmm_temperature")
print(target.condition_name, target.condition_range, "base", target.base_condition)
data = target.sample(20_000, 1.0)  # the only data TRADE sees: beta = 1

model = TRADE(
    target,
    transforms=2 if QUICK else 4,
    bins=10,
    spline_bound=6.0,
    seed=0,
    show_progress_bars=not QUICK,
)
model.fit(
    data,
    steps=GMM_STEPS,
    learning_rate=2e-3,
    huber_delta=0.75,
    causality_decay=0.05,
    conditions_per_step=8,
    samples_per_condition=64,
    data_per_condition=16,
)

# %% [markdown]
# Quality across the range: the normalised effective sample size of q as importance proposal for
# p (1 is perfect) and the largest relative error of the mode masses (modes with >= 1% mass)
# against the exact masses from quadrature (`target.exact_mode_masses`).

# %%
low, high = target.condition_range
betas = np.exp(np.linspace(np.log(low), np.log(high), 5))
for beta in betas:
    draws = model.sample(NUM_DRAWS, beta, seed=2)
    ess = effective_sample_size(model, target, beta, NUM_DRAWS)
    error, _ = mode_mass_error(target, draws, target.exact_mode_masses(beta))
    print(f"beta = {beta:5.2f}: ESS {ess:.2f}, largest mode-mass error {error:.2f}")

# %% [markdown]
# A grid of samples per condition: ground truth (top) and TRADE (bottom).

# %%
figure, axes = plt.subplots(2, len(betas), figsize=(3 * len(betas), 6), sharex=True, sharey=True)
for column, beta in enumerate(betas):
    for row, draws in enumerate(
        (target.sample(2000, beta, seed=3), model.sample(2000, beta, seed=4))
    ):
        axes[row, column].scatter(draws[:, 0], draws[:, 1], s=1, alpha=0.4)
        axes[row, column].set_xlim(-9, 10)
        axes[row, column].set_ylim(-8, 11)
    axes[0, column].set_title(f"beta = {beta:.2f}")
axes[0, 0].set_ylabel("ground truth")
axes[1, 0].set_ylabel("TRADE")
figure.tight_layout()

# %% [markdown]
# ## 2. Power-scaling sensitivity of an SBI posterior
# Power-scaling (Kallioinen et al., 2023) asks how the posterior moves when the likelihood or the
# prior is raised to a power alpha. Reweighting the alpha = 1 draws answers it near alpha = 1;
# TRADE learns the whole family p(theta | x_o, alpha) ∝ pi(theta) L(theta)^alpha from the same
# draws, so the answer holds across the range.
#
# We train NPE on a 2-D `gaussian_linear` task, draw from its posterior at one observation and
# scale the likelihood. The simulator's likelihood is tractable, so the family is exact; without
# one, pass `None` as log-likelihood and TRADE runs self-consistently.

# %%
simulator = sbiplug.make_simulator("gaussian_linear", dim=2)
prior = simulator.prior
theta = simulator.sample_prior(300 if QUICK else 3000, seed=0)
x = simulator.simulate(theta, seed=1)
trainer = sbiplug.make_estimator("npe", prior)
trainer.append_simulations(theta, x).train(
    max_num_epochs=2 if QUICK else 100, show_train_summary=False
)
posterior = trainer.build_posterior()
x_o = torch.tensor([0.4, -0.3])
samples = posterior.sample((NUM_DRAWS,), x=x_o, show_progress_bars=False)


def log_likelihood(theta):
    return simulator.log_likelihood(theta, x_o.expand(len(theta), 2))


result = power_scaling_sensitivity(
    (samples, log_likelihood, prior),
    alpha_range=(0.5, 2.0),
    component="likelihood",
    steps=POWER_STEPS,
    num_samples=NUM_DRAWS,
)
print(result.message)
print(result.data[["mean_trade", "mean_is", "sd_trade", "sd_is"]].to_dataframe().round(3))

# %% [markdown]
# The closed form for this task: mean alpha x / (1 + alpha), sd 1 / sqrt(10 (1 + alpha))
# (for the true posterior; NPE's approximation is what TRADE and reweighting start from).

# %%
alphas = result.data["alpha"].values
print("exact mean of theta_1:", np.round(alphas * 0.4 / (1 + alphas), 3))
print("exact sd:             ", np.round(1 / np.sqrt(10 * (1 + alphas)), 3))
figure = result.plot()

# %% [markdown]
# In a study, the same check runs as the diagnostic `power_scaling`
# (`sbiplug.Study(..., diagnostics=["power_scaling"])`), and its dataset lands in the result's
# DataTree under `diagnostics/power_scaling`.
