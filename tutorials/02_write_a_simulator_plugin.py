# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Write a simulator plugin
#
# A simulator is a prior plus a batched, seeded forward model. Package it as a plugin and it
# can be used by name everywhere: `sbiplug.make_simulator`, `sbiplug.Study`, study TOML files
# and the `sbiplug` command. Our example: the mean of a Gaussian observed through `n`
# noisy measurements, whose posterior is known in closed form, so the study can check itself
# with a C2ST against it.

# %%
import os

import numpy as np
import torch
from torch.distributions import Distribution, MultivariateNormal

import sbiplug
from sbiplug import Simulator
from sbiplug.toolkit import SeedLike, as_generator

torch.set_num_threads(1)
QUICK = os.environ.get("SBIPLUG_QUICK") == "1"

# %% [markdown]
# ## 1. The simulator
#
# Subclass `sbiplug.Simulator`: name the parameters, declare the data's shape, build the prior
# and implement `_simulate(theta, rng)`. Draw all randomness from `rng`, row by row: then a
# batch's result does not depend on how the rows are split, which is what lets studies simulate
# in chunks, resume, and run on a cluster with identical results.


# %%
class NoisyMean(Simulator):
    """theta ~ N(0, I_2); x = theta + sigma * eps, measured ``num_measurements`` times."""

    name = "noisy_mean"
    parameter_names = ("mean_1", "mean_2")

    def __init__(self, num_measurements: int = 5, sigma: float = 1.0) -> None:
        self.num_measurements = num_measurements
        self.sigma = sigma
        self.observation_shape = (num_measurements * 2,)
        self._prior = MultivariateNormal(torch.zeros(2), torch.eye(2))

    @property
    def prior(self) -> Distribution:
        return self._prior

    def _simulate(self, theta, rng: np.random.Generator):
        noise = rng.standard_normal((len(theta), self.num_measurements, 2))
        x = theta.numpy()[:, None, :] + self.sigma * noise
        return torch.as_tensor(x.reshape(len(theta), -1), dtype=torch.float32)

    def reference_posterior(self, x_o, num_samples: int, *, seed: SeedLike = None):
        # conjugate Gaussian: precision 1 + n / sigma^2, mean (sum of measurements) / sigma^2
        measurements = x_o.reshape(self.num_measurements, 2).double().numpy()
        precision = 1.0 + self.num_measurements / self.sigma**2
        mean = measurements.sum(0) / self.sigma**2 / precision
        draws = mean + as_generator(seed).standard_normal((num_samples, 2)) / np.sqrt(precision)
        return torch.as_tensor(draws, dtype=torch.float32)


# %% [markdown]
# ## 2. The plugin
#
# A plugin is any module or object with hook implementations. `register_simulators` yields a
# `SimulatorSpec`: plain data with a name and a factory. In a package, the factory is usually a
# lazy `"my_package.simulators:NoisyMean"` string so that listing plugins imports nothing heavy.


# %%
class NoisyMeanPlugin:
    @sbiplug.hookimpl
    def register_simulators(self):
        yield sbiplug.SimulatorSpec(
            name="noisy_mean",
            factory=NoisyMean,
            description="Gaussian mean from noisy measurements (analytic posterior)",
            has_reference_posterior=True,
        )


# %% [markdown]
# Installed packages register through an entry point in their `pyproject.toml`:
#
# ```toml
# [project.entry-points.sbiplug]
# noisy_mean = "my_package.plugin"
# ```
#
# Here, in a notebook, we register the plugin object directly with the running plugin manager.

# %%
from sbiplug.plugins import get_plugin_manager

info = get_plugin_manager().register(NoisyMeanPlugin(), "noisy_mean_plugin")
print(info.status, info.contributions)

# %% [markdown]
# ## 3. Check it against the contract
#
# The conformance kit checks shapes, seeding, batch invariance, input validation and the
# reference posterior. Use it in your plugin's own tests.

# %%
from sbiplug.testing import check_simulator

print(check_simulator("noisy_mean"))

# %% [markdown]
# ## 4. Use it by name
#
# Options of the factory go through `simulator_options`; in a study file they go under
# `[simulator] options = {num_measurements = 3}`.

# %%
study = sbiplug.Study(
    "noisy_mean",
    "npe",
    simulator_options={"num_measurements": 3},
    num_simulations=500 if QUICK else 5000,
    estimator_options={"hidden_features": 16 if QUICK else 32},
    train_options={"max_num_epochs": 2 if QUICK else 50},
    diagnostics={"c2st_reference": {"num_samples": 200 if QUICK else 1000}},
    seed=1,
    show_progress_bars=not QUICK,
)
result = study.run(num_observations=2, num_posterior_samples=500)
print(result.summary(observation=0))
print(result.diagnostics["c2st_reference"].message)
