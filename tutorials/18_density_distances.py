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
# # Distances that follow the posterior: geodesics, and modes you can count
#
# Two posterior draws on the same curved crescent are close for a scientist and may be far
# apart in Euclidean distance; two draws in different modes may be close in Euclidean distance
# and separated by a region of almost no mass. A *density-based distance* measures paths under
# the metric p(x)^(-2 beta) I: long where the density is low, so shortest paths (geodesics)
# follow the density and points cluster by mode. `sbiplug_distances` implements the learned
# version of Sorrenson, Behrend-Uriarte, Schnörr & Köthe (ICML 2025): a normalizing flow
# learns the density, a kNN graph gives initial paths, and a score-guided relaxation makes them
# smooth geodesics.
#
# This tutorial
#
# 1. compares Euclidean and density-based distances on a two-component density with a known
#    log p,
# 2. learns the same distance from samples alone (a flow fitted by the plugin),
# 3. counts the modes of a sample with `find_modes`,
# 4. runs the `posterior_modes` diagnostic in a two_moons study with NPE.
#
# Set `SBIPLUG_QUICK=1` to run everything with tiny budgets (a smoke test, not a result).

# %%
import os

import matplotlib.pyplot as plt
import torch
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

import sbiplug
from sbiplug import DiagnosticContext
from sbiplug_distances import DensityDistance, PosteriorModesDiagnostic, find_modes

QUICK = os.environ.get("SBIPLUG_QUICK") == "1"
NUM_SAMPLES = 600 if QUICK else 3000
FLOW_OPTIONS = {"max_epochs": 60} if QUICK else {}
torch.manual_seed(0)

# %% [markdown]
# ## 1. A density with a known log p
#
# Two elongated Gaussian bumps. `DensityDistance` takes the density as a torch
# `Distribution` (any callable `log_prob`, a trained flow or an sbi posterior work the same
# way); the score, grad log p, comes by autograd. `fit(samples)` only builds the kNN graph
# whose shortest paths start the relaxation.

# %%
components = Independent(
    Normal(torch.tensor([[-2.0, 0.0], [2.0, 0.0]]), torch.tensor([[0.7, 0.35], [0.7, 0.35]])),
    1,
)
density = MixtureSameFamily(Categorical(torch.tensor([0.5, 0.5])), components)
samples = density.sample((NUM_SAMPLES,))

exact = DensityDistance(density, show_progress_bars=False).fit(samples)
a = torch.tensor([[-3.2, 0.0], [-1.2, 0.0]])  # along one bump / across the gap
b = torch.tensor([[-0.8, 0.0], [1.2, 0.0]])
print("Euclidean:     ", (a - b).norm(dim=1))
print("density-based: ", exact.distance(a, b))

# %% [markdown]
# Both pairs are 2.4 apart in Euclidean terms, but the second crosses the gap between the
# bumps: its density-based distance is several times larger. The metric is
# *dimension-adapted* by default, n(x) = p(x)^(-beta/D) with beta = 1: the per-dimension
# log-density keeps the factor of order one in any dimension.
#
# Between two points off the axis, the geodesic across the gap bends towards the bumps' cores
# and crosses the gap where it is narrowest in density terms; the graph path it started from
# is a jagged polyline through the samples.

# %%
start, end = torch.tensor([[-2.5, 0.6]]), torch.tensor([[2.5, -0.6]])
graph_path = exact.geodesic(start, end, relax=False)[0]
geodesic = exact.geodesic(start, end)[0]
figure, ax = plt.subplots(figsize=(6, 3.2), layout="constrained")
ax.scatter(*samples.T, s=3, c="0.7")
ax.plot(*graph_path.T, "--", color="tab:orange", label="kNN-graph path")
ax.plot(*geodesic.T, color="k", label="relaxed geodesic")
ax.plot(*torch.cat([start, end]).T, ":", color="tab:blue", label="straight line")
ax.legend(fontsize=8)
ax.set_aspect("equal")
figure

# %% [markdown]
# ## 2. Learning the distance from samples alone
#
# With no density at hand, `DensityDistance()` fits a neural spline flow (zuko) on the samples
# and relaxes with its autograd score; `density="knn"` is the classic graph estimator with kNN
# density estimates, which cannot relax (it has no density between samples). Along a bump the
# learned distance is close to the exact one. Across the gap it is too short: a flow is a
# continuous map of a Gaussian and puts some mass between separated modes, which makes the gap
# cheaper; the benchmark (plugin page) measures both effects in 2-D and 10-D.

# %%
learned = DensityDistance(flow_options=FLOW_OPTIONS, show_progress_bars=False).fit(samples)
knn = DensityDistance("knn", show_progress_bars=False).fit(samples)
print("exact:       ", exact.distance(a, b))
print("flow+relax:  ", learned.distance(a, b))
print("kNN graph:   ", knn.distance(a, b))

# %% [markdown]
# `pairwise(points)` gives the whole distance matrix by Dijkstra on the graph (symmetric, a
# true metric on the graph); it is what clustering uses.

# %%
matrix = exact.pairwise(samples[:300])
print(matrix.shape, bool(torch.equal(matrix, matrix.T)))

# %% [markdown]
# ## 3. Counting modes
#
# `find_modes` over-clusters the draws by their density-based distances, then joins clusters
# whose peaks are linked by a geodesic without a valley (neither the density nor the draws' own
# kNN density drops below a fifth of the lower peak's). A long ridge stays one mode; separated
# bumps count apart.

# %%
modes = find_modes(samples[:800], exact)
print(f"{modes.num_modes} modes, masses {modes.masses.numpy().round(2)}")
print("density dip on the geodesic between the peaks:", modes.valleys.numpy().round(3))

# %% [markdown]
# ## 4. The `posterior_modes` diagnostic in a study
#
# two_moons' posterior is two crescents, mirror images of each other across t1 + t2 = 0: apart
# when x_1 is well below 0.25 (first observation), touching near x_1 = 0 (second). The
# diagnostic uses the NPE posterior's own `log_prob` at each observation for the geodesics and
# reads the dip between peaks off both that density and the draws' kNN density, either of which
# keeps two modes apart (a flow may join modes by a thin filament of density without mass; a
# kNN ball may smooth over a narrow gap). It stores counts, masses, each mode's highest-density
# draw and the geodesics between them in `diagnostics/posterior_modes`.

# %%
study = sbiplug.Study(
    "two_moons",
    "npe",
    num_simulations=1000 if QUICK else 5000,
    diagnostics={"posterior_modes": {"num_draws": 300 if QUICK else 1000}},
    train_options={"max_num_epochs": 40} if QUICK else {},
    seed=2,
    show_progress_bars=False,
)
result = study.run(
    observations=torch.tensor([[-0.3, 0.1], [0.0, 0.3]]),
    num_posterior_samples=300 if QUICK else 1000,
)
modes_result = result.diagnostics["posterior_modes"]
print(modes_result.message)

# %%
figure, axes = plt.subplots(1, 2, figsize=(9, 3.8), layout="constrained")
for i, ax in enumerate(axes):
    PosteriorModesDiagnostic().plot(modes_result, ax=ax, observation=i)
figure

# %% [markdown]
# In quick mode the NPE above is trained for a few epochs on few simulations and need not
# resolve the two crescents yet. The diagnostic also runs on any draws without a study: here
# on exact posterior draws (two_moons inverts its simulator), with a flow fitted on the draws
# as the density since exact draws come without one.

# %%
simulator = sbiplug.make_simulator("two_moons")
x_o = torch.tensor([[-0.3, 0.1], [0.0, 0.3]])
num_exact = 300 if QUICK else 1000
exact_draws = torch.stack(
    [simulator.reference_posterior(x, num_exact, seed=i) for i, x in enumerate(x_o)]
)
context = DiagnosticContext(
    simulator=simulator, observations=x_o, posterior_samples=exact_draws, seed=0
)
exact_modes = PosteriorModesDiagnostic(num_draws=num_exact).run(context)
print(exact_modes.message)
exact_modes.plot()

# %% [markdown]
# The arrays behind the figure are in the result tree, ready for netCDF:

# %%
tree = result.to_datatree()
print(tree["diagnostics/posterior_modes"]["num_modes"].values)

# %% [markdown]
# ## Where it stops
#
# - Parameters on a sphere or torus are refused with a clear error: the base metric would have
#   to be the manifold's own.
# - Relaxed geodesics cost one flow evaluation per path point per step; `pairwise` therefore
#   uses graph distances unless `relax=True`.
# - The dimension-adapted exponent beta / D is our reconstruction of the paper's
#   "dimension-adapted Fermat distance"; see the design note.
