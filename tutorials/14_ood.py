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
# # Is my observation something my simulator produces? OOD scores from gradient norms
#
# Before reading a posterior for an observation x_o, check that x_o looks like the simulator's
# output: a posterior for an out-of-distribution x_o is an extrapolation of the network.
#
# The obvious check, the likelihood of x_o under a density model of simulated data, famously
# fails: deep generative models often give *simpler* inputs a higher likelihood than the data
# they were trained on (Nalisnick et al., 2019). `sbiplug_ood` implements the fix of Dauncey
# et al. (TMLR 2024): score how typical the *gradient* of log p(x) is, layer by layer, with
# respect to the model's parameters; and, following Montazeran & Köthe (2025), do it with an
# *immature* model, stopped after a few epochs.
#
# This tutorial
#
# 1. trains a flow on simulations of `gaussian_linear`, keeping early checkpoints,
# 2. compares likelihood, typicality and gradient-norm scores (AUROC) on misspecified data,
# 3. checks the representation invariance of the gradient features,
# 4. runs the `ood` diagnostic on a few observations,
# 5. scores with the density network of a trained NLE, p(x | theta).
#
# Set `SBIPLUG_QUICK=1` to run everything with tiny budgets (a smoke test, not a result).

# %%
import math
import os

import matplotlib.pyplot as plt
import torch

import sbiplug
from sbiplug import DiagnosticContext
from sbiplug_ood import (
    GradientNormScorer,
    LikelihoodScorer,
    StandardizedFlow,
    TypicalityScorer,
    auroc,
    density_from_estimator,
    train_density,
)

torch.set_num_threads(1)
QUICK = os.environ.get("SBIPLUG_QUICK") == "1"
NUM_TRAIN = 600 if QUICK else 4000
NUM_TEST = 100 if QUICK else 1000
CHECKPOINTS = [0, 2] if QUICK else [0, 1, 2, 5, 20, 50]
NLE_EPOCHS = 1 if QUICK else 50

# %% [markdown]
# ## Simulations and misspecified data
# `gaussian_linear`: theta ~ N(0, 0.1 I) in 10 dimensions, x ~ N(theta, 0.1 I). Three sets of
# out-of-distribution data come from simulators that are wrong in different ways: no noise at
# all (simpler data, concentrated near the mode), twice the noise, and a shifted output.

# %%
simulator = sbiplug.make_simulator("gaussian_linear")
theta = simulator.sample_prior(NUM_TRAIN + 3 * NUM_TEST, seed=0)
x = simulator.simulate(theta, seed=1)
x_train = x[:NUM_TRAIN]
x_fit = x[NUM_TRAIN : NUM_TRAIN + NUM_TEST]  # fits the scorers
x_eval = x[NUM_TRAIN + NUM_TEST : NUM_TRAIN + 2 * NUM_TEST]  # ID side of the AUROC

theta_ood = theta[NUM_TRAIN + 2 * NUM_TEST :]
noise = x[NUM_TRAIN + 2 * NUM_TEST :] - theta_ood
ood_sets = {
    "noise-free": theta_ood,
    "noise x2": theta_ood + 2 * noise,
    "shift +0.3": theta_ood + noise + 0.3,
}

# %% [markdown]
# ## Train a flow, keep early checkpoints
# `train_density` trains a zuko neural spline flow on standardised x (the standardisation is a
# fixed input layer, so `log_prob` is the density of raw x) and returns a deep copy of the model
# at each requested epoch; epoch 0 is the untrained initialisation.

# %%
models = train_density(x_train, max(CHECKPOINTS), CHECKPOINTS, flow="nsf", seed=0)
with torch.no_grad():  # held-out negative log-likelihood by epoch
    held_out_nll = {e: round(-float(m.log_prob(x_fit).mean()), 3) for e, m in models.items()}
held_out_nll

# %% [markdown]
# ## Likelihood, typicality and gradient norms
# Each scorer is fitted on `x_fit`, data the flow was not trained on, and scores `x_eval` and
# each OOD set; higher scores mean "more out-of-distribution". `auroc` is the probability that
# an OOD input scores higher than an in-distribution one (0.5 = chance, below 0.5 = the score
# prefers the OOD data). Groups of B = 5 inputs pool evidence: the score of a group uses the
# gradient of the sum of their log-likelihoods.
#
# The gradient score comes in two fits: Dauncey et al.'s independent Gaussian per layer
# (`"gradient"`, the default) and the joint Gaussian of all layers' log norms
# (`covariance="full"`), whose correlation matrix is shrunk towards the independent model by the
# Ledoit-Wolf rule. The joint fit sees changes in how the layers' norms move together; on the
# 8x8 digits of the benchmark it is the better of the two, on `gaussian_linear` the independent
# fit is.

# %%
rows = []
for epoch, model in models.items():
    for batch_size in (1, 5):
        scorers = {
            "likelihood": LikelihoodScorer(model, batch_size).fit(x_fit),
            "typicality": TypicalityScorer(model, batch_size).fit(x_fit),
            "gradient": GradientNormScorer(model, batch_size).fit(x_fit),
            "gradient-full": GradientNormScorer(model, batch_size, covariance="full").fit(x_fit),
        }
        in_scores = {name: scorer.score(x_eval) for name, scorer in scorers.items()}
        for ood_name, x_ood in ood_sets.items():
            values = [auroc(in_scores[n], s.score(x_ood)) for n, s in scorers.items()]
            rows.append((ood_name, batch_size, epoch, *values))

print(f"{'OOD set':<12} {'B':>2} {'epoch':>5} " + " ".join(f"{m:>13}" for m in scorers))
for ood_name, batch_size, epoch, *values in sorted(rows):
    print(f"{ood_name:<12} {batch_size:>2} {epoch:>5} " + " ".join(f"{v:>13.3f}" for v in values))

# %% [markdown]
# On the noise-free data the likelihood is *worse than chance*: those points sit near the mode
# of the flow. Typicality and the gradient features both notice them, and already the earliest
# checkpoints do about as well as the later ones. See `benchmarks/results/ood.txt` for the
# full comparison, including 8x8 digits.
#
# ## Representation invariance
# If y = A x + b and the model's input layer changes to match, log p(y) = log p(x) - log|det A|:
# the likelihood moves, the gradient with respect to the parameters does not. Here the
# flow's standardisation is the input layer: rescaling the data and the layer together leaves
# the features unchanged.

# %%
model = models[CHECKPOINTS[1]]
scale, offset = 3.0, -1.0
rescaled = StandardizedFlow(model.flow, model.shift * scale + offset, model.scale * scale)
y_eval = x_eval * scale + offset
features_x = GradientNormScorer(model).features(x_eval[:100])
features_y = GradientNormScorer(rescaled).features(y_eval[:100])
with torch.no_grad():
    shift = (rescaled.log_prob(y_eval[:100]) - model.log_prob(x_eval[:100])).mean()
print(
    f"max feature change {float((features_x - features_y).abs().max()):.2e}, "
    f"log-likelihood change {float(shift):.3f} (-10 log 3 = {-10 * math.log(3.0):.3f})"
)

# %% [markdown]
# ## The `ood` diagnostic
# For a study, the diagnostic `ood` does the whole protocol: it trains a flow on half of the
# simulations up to an early checkpoint, fits the gradient-norm Gaussian on a quarter and uses
# the last quarter as the reference distribution of scores. Each observation gets a percentile
# and an empirical p-value; observations below `alpha / num_observations` are flagged (with an
# `OODWarning`). In a `Study`, list it in `diagnostics=["ood"]`.

# %%
observations = torch.cat([x_eval[:2], ood_sets["noise x2"][:1], ood_sets["shift +0.3"][:1]])
context = DiagnosticContext(
    simulator=simulator, x=x[: NUM_TRAIN + NUM_TEST], observations=observations, seed=0
)
diagnostic = sbiplug.make_diagnostic("ood", checkpoint=2)
result = diagnostic.run(context)
print(result.message)
print(result.data[["score", "percentile", "p_value", "outlier"]].to_dataframe())

# %%
fig = result.plot()
fig

# %% [markdown]
# ## Scoring with a trained NLE: p(x | theta)
# A neural likelihood estimator already is a density model of x, conditional on theta.
# `density_from_estimator` wraps its network for the scorers, which then take the parameters as
# `context`: an (x, theta) pair is atypical when x is unlike what the simulator produces *at
# that theta*.

# %%
trainer = sbiplug.make_estimator("nle", simulator.prior, show_progress_bars=False)
trainer.append_simulations(theta[:NUM_TRAIN], x_train).train(
    max_num_epochs=NLE_EPOCHS, show_train_summary=False
)
likelihood_model = density_from_estimator(trainer)
theta_fit = theta[NUM_TRAIN : NUM_TRAIN + NUM_TEST]
theta_eval = theta[NUM_TRAIN + NUM_TEST : NUM_TRAIN + 2 * NUM_TEST]
scorer = GradientNormScorer(likelihood_model).fit(x_fit, context=theta_fit)
in_scores = scorer.score(x_eval, context=theta_eval)
for ood_name, x_ood in ood_sets.items():
    print(f"{ood_name:<12} AUROC {auroc(in_scores, scorer.score(x_ood, context=theta_ood)):.3f}")

# %%
plt.close("all")
