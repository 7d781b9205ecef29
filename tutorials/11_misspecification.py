# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 11 · Is my simulator wrong? Misspecification detection in summary space
#
# An amortised posterior is only trustworthy on data the simulator can produce. Schmitt,
# Bürkner, Köthe & Radev (*Detecting Model Misspecification in Amortized Bayesian Inference
# with Neural Networks*, GCPR 2023) train the summary network with a penalty that makes the
# summaries of simulated data look like draws from N(0, I), and then test observed data with a
# maximum mean discrepancy (MMD) in that summary space:
#
# 1. estimator `npe_mmd`: NPE + `mmd_weight · MMD²[h(x) ‖ N(0, I)]` on every minibatch;
# 2. `misspecification_test`: root MMD between observed and reference summaries, against a
#    null built by simulating as many fresh data sets as were observed, many times. By
#    default it also tests blocks of fixed *data features* (for sets: the noise's scale,
#    skewness, tails and dependence; for vectors and time series: the data themselves, and
#    the same noise features of their residuals against replicates simulated at the
#    posterior's fit) and combines the blocks by their smallest p-value under the same
#    simulated null;
# 3. diagnostic `misspecification`: the same test, run automatically in a study that has
#    observations, warning when the model is rejected.
#
# `SBIPLUG_QUICK=1` shrinks every budget so that this file runs in seconds.

# %%
import os

import torch

import sbiplug
from sbiplug import DiagnosticContext
from sbiplug_misspec import Misspecified, SummaryMMD, misspecification_test

torch.set_num_threads(1)
QUICK = os.environ.get("SBIPLUG_QUICK") == "1"
N_OBS = 20 if QUICK else 100
NUM_SIMULATIONS = 200 if QUICK else 5000
MAX_EPOCHS = 1 if QUICK else 20
TEST_SIZES = {"num_reference": 200, "num_null": 99} if QUICK else {}

# %% [markdown]
# ## The training model and its misspecified relatives
#
# `gaussian_means`: a 2-D mean μ ~ N(0, I) and 100 i.i.d. observations x_k ~ N(μ, I) per data
# set. Its knobs (`prior_loc`, `prior_scale`, `noise_scale`, `contamination`) build the
# processes that might *really* have produced the observations; with the default knobs it is
# the model we train on.

# %%
simulator = sbiplug.make_simulator("gaussian_means", n_obs=N_OBS)
shifted = sbiplug.make_simulator("gaussian_means", n_obs=N_OBS, prior_loc=5.0)
print(simulator, shifted, sep="\n")

theta = simulator.sample_prior(NUM_SIMULATIONS, seed=0)
x = simulator.simulate(theta, seed=1)
x.shape  # (simulations, observations per set, 2 coordinates)

# %% [markdown]
# ## Train NPE with an MMD-regularised summary network
#
# The default summary network is a DeepSet (permutation invariant, linear output of size
# `summary_dim`, by default twice the number of parameters) that mean-pools the observations,
# with a linear skip from the set mean so that sets far from the training data are not
# squashed back into the bulk. Any sbi density estimator can sit on top of it. The option
# `embedding_pooling="centred"` instead splits the summaries in two: the set mean through an
# affine map, whitened on the first training batch, and a shape block computed from the
# observations around the set mean. The shape block starts at the log within-set spread, and
# it is held at standard deviation 0.5 (`embedding_shape_scale`). The test then also detects a
# wrong noise level or contamination, which mean pooling cannot see (see
# benchmarks/results/misspecification.txt).

# %%
torch.manual_seed(0)
trainer = sbiplug.make_estimator(
    "npe_mmd", simulator.prior, mmd_weight=1.0, summary_dim=4, show_progress_bars=False
)
trainer.append_simulations(theta, x).train(max_num_epochs=MAX_EPOCHS, training_batch_size=50)
posterior = trainer.build_posterior()

# %% [markdown]
# ## Test observed data against the model
#
# Five data sets from the training model, and five from a process whose prior mean is shifted
# by 5. The test reports the root MMD, its p-value against the simulated null, the critical
# value and the decision at α = 0.05.

# %%
well_specified = simulator.simulate(simulator.sample_prior(5, seed=10), seed=11)
misspecified = shifted.simulate(shifted.sample_prior(5, seed=12), seed=13)

result_good = misspecification_test(trainer, simulator, well_specified, seed=0, **TEST_SIZES)
result_bad = misspecification_test(trainer, simulator, misspecified, seed=0, **TEST_SIZES)
print(result_good)
print(result_bad)

# %% [markdown]
# A single observed data set (N = 1) works too; the null is then built from single data sets.

# %%
result_single = misspecification_test(posterior, simulator, misspecified[0], seed=1, **TEST_SIZES)
print(result_single)

# %% [markdown]
# ## Made wrong in ways nobody listed: the generic wrapper
#
# `Misspecified(simulator, kind, strength)` turns any simulator into a misspecified data
# process: noise replaced (`heavy_tails`: Student-t of the same scale, `skew` and `bimodal`
# with the same mean and variance), `outliers`, `scale`, `drift`, `correlated` noise,
# `censor`, or a moved prior (`prior_shift`, `prior_scale`). Student-t noise with 2 degrees of
# freedom leaves the posterior's summaries (the set means) nearly unchanged, so the summary
# space alone (`data_features=None`, the paper's test) is blind to it; the default test sees
# it in the data block and says which features moved.

# %%
heavy = Misspecified(simulator, "heavy_tails", 0.5)
x_heavy = heavy.simulate(heavy.sample_prior(5, seed=14), seed=15)
result_tails = misspecification_test(trainer, simulator, x_heavy, seed=0, **TEST_SIZES)
result_tails_paper = misspecification_test(
    trainer, simulator, x_heavy, seed=0, data_features=None, **TEST_SIZES
)
print(result_tails.message)
print(f"summary space alone: p = {result_tails_paper.p_value:.3g}")
projection = result_tails.plot()  # observed against the reference cloud, in 2-D

# %% [markdown]
# ## The diagnostic
#
# In a study with observations the `misspecification` diagnostic runs by itself. Here we call it
# on a hand-made context; it warns (`MisspecificationWarning`) when the test rejects, and its
# plot shows the simulated null, the critical value and the observed statistic.

# %%
diagnostic = sbiplug.make_diagnostic("misspecification", **TEST_SIZES)
context = DiagnosticContext(
    simulator=simulator, estimator=trainer, observations=misspecified, seed=0
)
diagnostic_result = diagnostic.run(context)
print(diagnostic_result.message)
figure = diagnostic_result.plot()

# %% [markdown]
# ## The regulariser elsewhere
#
# `SummaryMMD` is a plain callable `summaries (batch, S) -> scalar`, so any estimator that
# trains an embedding net can add it to its loss, e.g. CMPE's `summary_loss=` option:
#
# ```python
# trainer = sbiplug.make_estimator("cmpe", prior, embedding_net=net, summary_loss=SummaryMMD())
# ```
#
# or a hand-written training step: `loss = nll.mean() + SummaryMMD(weight=1.0)(net(x))`.

# %%
penalty = SummaryMMD(weight=1.0, kernel="imq")
summaries = trainer.embedding_net(x[:256]).detach()
print(f"{penalty}: {float(penalty(summaries)):.3f} on trained summaries")

# %% [markdown]
# ## What the test cannot see
#
# The test compares the observed data with the simulator's only through the learned summaries
# and the fixed data features. A misspecification that leaves both distributions unchanged is
# invisible: for example a prior that is *narrower* than the simulator's (the data stay inside
# the reference cloud), or, with one data set (N = 1), any change that is small against the
# variation between data sets. A slow drift within a set moves its mean, which looks like a
# different parameter. When the model has as many parameters as a data vector has entries
# (`two_moons`: 2 and 2), a fit absorbs almost any noise, and no test of the data alone sees
# a wrong noise model. Spending part of α on the data blocks also costs some power against a
# shifted or widened prior at N = 1. See `benchmarks/misspecification.py` for the numbers.
