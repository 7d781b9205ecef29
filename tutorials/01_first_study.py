# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Your first study
#
# A `Study` carries a simulator and an estimator, both named by the plugins that provide them,
# through simulation, training, inference and diagnostics, and hands back a `StudyResult`
# whose data ArviZ reads. Here: the two moons task of the sbibm benchmark, neural posterior
# estimation (NPE), simulation-based calibration (SBC) and a classifier two-sample test (C2ST)
# against the exact reference posterior.
#
# Set `SBIPLUG_QUICK=1` to run everything with tiny budgets (a smoke test, not a result).

# %%
import os

import matplotlib
import torch

import sbiplug

matplotlib.use(os.environ.get("MPLBACKEND", "Agg"))
torch.set_num_threads(1)
QUICK = os.environ.get("SBIPLUG_QUICK") == "1"

# %% [markdown]
# ## What is installed?
#
# Every name below comes from a plugin; `sbiplug list simulators` prints the same on the
# command line.

# %%
print(sorted(sbiplug.simulators()))
print(sorted(sbiplug.estimators()))
print(sorted(sbiplug.diagnostics()))

# %% [markdown]
# ## Define and run the study
#
# Options are checked before any work starts: a misspelt name or option fails at once, with
# the closest match. `seed` makes the whole study reproducible bit for bit.

# %%
study = sbiplug.Study(
    simulator="two_moons",
    estimator="npe",
    num_simulations=500 if QUICK else 10_000,
    estimator_options={"density_estimator": "nsf", "hidden_features": 16 if QUICK else 32},
    train_options={"max_num_epochs": 2 if QUICK else 60},
    diagnostics={
        "sbc": {
            "num_sbc_runs": 20 if QUICK else 200,
            "num_posterior_samples": 20 if QUICK else 200,
        },
        "c2st_reference": {"num_samples": 200 if QUICK else 1000},
    },
    seed=0,
    show_progress_bars=not QUICK,
)
result = study.run(
    true_parameters=torch.tensor([[0.2, 0.1]]), num_posterior_samples=200 if QUICK else 1000
)
result

# %% [markdown]
# ## Summaries and diagnostics
#
# `summary()` is ArviZ's table: mean, sd, the 94% HDI, and R-hat and ESS over the chains
# (NPE's independent draws come as 4 chains, so both mean something; for MCMC estimators such
# as `nle` they are the convergence check).

# %%
print(result.summary())
for name, diagnostic in result.diagnostics.items():
    print(f"{name}: passed={diagnostic.passed}  {diagnostic.message}")

# %% [markdown]
# ## Plots
#
# The pair plot marks the true parameters; the SBC plot shows each parameter's ECDF of
# probability integral transforms minus the uniform CDF, inside simultaneous 95% bands. Every
# plot takes `ax=` and returns its figure.

# %%
pair_figure = result.plot_pair()
sbc_figure = result.plot_sbc()
c2st_figure = result.plot_diagnostic("c2st_reference")

# %% [markdown]
# ## ArviZ, netCDF and back
#
# `to_arviz()` gives an `InferenceData` (ArviZ 0.x) or the `DataTree` itself (ArviZ 1.x);
# every posterior variable has the dims `(chain, draw, observation)`.

# %%
# ArviZ, imported without its notice about the coming 1.x refactoring
from sbiplug.inference_data import arviz

az = arviz()
data = result.to_arviz()
print(az.summary(data, kind="stats"))

folder = result.save("first-study")
loaded = sbiplug.StudyResult.load(folder)
assert torch.equal(loaded.samples, result.samples)
print(sorted(p.name for p in folder.iterdir()))

# %% [markdown]
# ## The same estimator in a plain sbi script
#
# Registered conditional density estimators (sbi's own `maf`, `nsf`, `mdn`, `zuko_*` and
# plugins' such as `fff` and `mfff`) also work without a Study: `sbiplug.density_estimator`
# returns the builder that sbi's `NPE(density_estimator=...)` takes, options checked by name.

# %%
from sbi.inference import NPE

simulator = sbiplug.make_simulator("two_moons")
theta = simulator.sample_prior(500 if QUICK else 5_000, seed=1)
x = simulator.simulate(theta, seed=2)
builder = sbiplug.density_estimator("nsf", hidden_features=16 if QUICK else 32)
trainer = NPE(simulator.prior, density_estimator=builder, show_progress_bars=False)
trainer.append_simulations(theta, x).train(max_num_epochs=2 if QUICK else 60)
plain_samples = trainer.build_posterior().sample(
    (200 if QUICK else 1000,), x=result.observations[0], show_progress_bars=False
)
print("plain sbi posterior mean:", plain_samples.mean(0))
