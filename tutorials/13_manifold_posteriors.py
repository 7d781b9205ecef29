# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Posteriors on the sphere and the torus
#
# Directions, angles and orientations do not live in R^n. A box prior on an angle cuts the
# circle at +-pi, and a Euclidean flow cannot put one connected mode across that cut; a
# direction fitted as a free 3-vector wastes capacity off the sphere. Manifold free-form flows
# (M-FFF; Sorrenson et al., arXiv 2312.09852) model the posterior on the manifold itself: a
# free-form encoder/decoder pair whose outputs are projected onto the manifold, trained with a
# tangent-space trace surrogate of the log-determinant. Sampling is one network pass plus a
# projection, and `log_prob` is the exact density with respect to the manifold's area.
#
# The `sbiplug_fff` plugin contributes the estimators `fff` and `mfff` and three simulators:
# `vmf_direction` (S^2), `torus_angles` (T^2) and `so3_orientation` (SO(3)).
#
# Set `SBIPLUG_QUICK=1` to run everything with tiny budgets (a smoke test, not a result).

# %%
import math
import os
import warnings

import matplotlib
import matplotlib.pyplot as plt
import torch

import sbiplug
from sbiplug_fff import fit_flow
from sbiplug_fff.distributions import VonMisesFisher

matplotlib.use(os.environ.get("MPLBACKEND", "Agg"))
torch.set_num_threads(1)
warnings.filterwarnings("ignore", message=".*converged.*")
QUICK = os.environ.get("SBIPLUG_QUICK") == "1"
NUM_SIMULATIONS = 200 if QUICK else 5000
# the trainers' defaults (a step budget from the number of simulations); quick: one epoch
TRAIN_OPTIONS = {"max_num_epochs": 1} if QUICK else {}

# %% [markdown]
# ## A direction on the sphere
#
# `vmf_direction`: an unknown unit vector mu, a uniform prior on S^2, and five observed unit
# vectors drawn from a von Mises-Fisher distribution around mu. Parameters are unit vectors of
# R^3; the prior is a torch distribution whose support is the sphere, so sbi's prior-support
# checks accept the flow's samples.

# %%
simulator = sbiplug.make_simulator("vmf_direction")
theta = simulator.sample_prior(NUM_SIMULATIONS, seed=0)
x = simulator.simulate(theta, seed=1)
print(theta[:3], theta.norm(dim=-1)[:3])

# %% [markdown]
# `make_estimator("mfff", prior, manifold="sphere")` returns an sbi NPE trainer (with a
# cosine learning-rate decay over a step budget) whose density estimator is a manifold
# free-form flow. (In plain sbi the same is
# `NPE(prior, density_estimator=sbiplug_fff.build_mfff(manifold="sphere"))`; in a `Study` the
# manifold comes from the simulator.) Parameters off the sphere are refused at
# `append_simulations`.
#
# The flow's latent is, by default on the sphere and the torus, a mixture of von
# Mises(-Fisher) components whose weights, means and concentrations a small network reads off
# the observation (`latent="mixture"`; the paper's plain M-FFF uses `latent="uniform"`). The
# latent then already sits near the posterior and the free-form flow learns only a
# correction; `log_prob` stays exact: log p_Z(f(theta) | x) minus the decoder's tangent-space
# log-determinant.

# %%
torch.manual_seed(0)
trainer = sbiplug.make_estimator("mfff", simulator.prior, manifold="sphere")
trainer.append_simulations(theta, x).train(**TRAIN_OPTIONS)
posterior = trainer.build_posterior()

try:
    sbiplug.make_estimator("mfff", simulator.prior, manifold="sphere").append_simulations(
        2 * theta, x
    )
except ValueError as error:
    print("refused:", str(error)[:120], "...")

# %% [markdown]
# Posterior draws for one observation, next to the analytic von Mises-Fisher posterior, in
# longitude/latitude. `log_prob` is exact; here it is compared with the analytic density.

# %%
x_o = simulator.simulate(simulator.sample_prior(1, seed=5), seed=6)[0]
draws = posterior.sample((500 if QUICK else 2000,), x=x_o, show_progress_bars=False)
reference = simulator.reference_posterior(x_o, 2000, seed=7)
print("on the sphere:", bool(((draws.norm(dim=-1) - 1).abs() < 1e-5).all()))
log_q = posterior.log_prob(draws[:500], x=x_o)
log_p = simulator.reference_log_prob(draws[:500], x_o)
print(f"mean |log q - log p| at the draws: {float((log_q - log_p).abs().mean()):.3f} nats")


def lon_lat(points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.atan2(points[:, 1], points[:, 0]), torch.asin(points[:, 2].clamp(-1, 1))


def plot_sphere_draws(ax, draws, reference):
    for points, label, colour in [(reference, "analytic", "0.6"), (draws, "M-FFF", "C0")]:
        lon, lat = lon_lat(points)
        ax.scatter(lon, lat, s=2, alpha=0.4, color=colour, label=label)
    ax.set(
        xlabel="longitude",
        ylabel="latitude",
        xlim=(-math.pi, math.pi),
        ylim=(-math.pi / 2, math.pi / 2),
        title="draws on S^2",
    )
    ax.legend(markerscale=5)
    return ax.figure


def plot_sphere_density(ax, log_prob, resolution):
    lon = torch.linspace(-math.pi, math.pi, 2 * resolution)
    lat = torch.linspace(-math.pi / 2, math.pi / 2, resolution)
    grid_lat, grid_lon = torch.meshgrid(lat, lon, indexing="ij")
    points = torch.stack(
        [grid_lat.cos() * grid_lon.cos(), grid_lat.cos() * grid_lon.sin(), grid_lat.sin()], dim=-1
    ).reshape(-1, 3)
    with torch.no_grad():
        density = log_prob(points).exp().reshape(resolution, 2 * resolution)
    ax.pcolormesh(grid_lon, grid_lat, density, shading="auto")
    ax.set(xlabel="longitude", ylabel="latitude", title="M-FFF density q(mu | x_o)")
    return ax.figure


figure, axes = plt.subplots(1, 2, figsize=(11, 4))
plot_sphere_draws(axes[0], draws, reference)
plot_sphere_density(axes[1], lambda p: posterior.log_prob(p, x=x_o), 20 if QUICK else 90)
figure.tight_layout()

# %% [markdown]
# ## Two angles on the torus
#
# `torus_angles`: angles (a, b) observed through noisy (cos a, sin a, cos 2b, sin 2b). The
# posterior of b has two modes half a turn apart, and for a near pi the posterior of a wraps
# across the seam at +-pi. Parameters are (cos a, sin a, cos b, sin b): the torus embedded in
# R^4.

# %%
torus_simulator = sbiplug.make_simulator("torus_angles")
theta_t = torus_simulator.sample_prior(NUM_SIMULATIONS, seed=0)
x_t = torus_simulator.simulate(theta_t, seed=1)
torch.manual_seed(0)
# At its defaults: the latent is the von Mises mixture (with the uniform latent the decoder
# must squeeze the whole torus into two narrow bumps, and the posterior comes out broader),
# and the trainer decays the learning rate over a step budget set by the number of
# simulations.
torus_trainer = sbiplug.make_estimator("mfff", torus_simulator.prior, manifold="torus")
torus_trainer.append_simulations(theta_t, x_t).train(**TRAIN_OPTIONS)
torus_posterior = torus_trainer.build_posterior()

seam = torus_simulator.torus.from_angles(torch.tensor([[3.1, 1.2]]))  # a at the seam
x_seam = torus_simulator.simulate(seam, seed=2)[0]
torus_draws = torus_posterior.sample((500 if QUICK else 3000,), x=x_seam, show_progress_bars=False)
torus_reference = torus_simulator.reference_posterior(x_seam, 3000, seed=3)


def plot_torus(ax, points, title):
    angles = torus_simulator.torus.to_angles(points)
    ax.scatter(angles[:, 0], angles[:, 1], s=2, alpha=0.3)
    ax.set(xlabel="a", ylabel="b", xlim=(-math.pi, math.pi), ylim=(-math.pi, math.pi), title=title)
    return ax.figure


figure, axes = plt.subplots(1, 3, figsize=(14, 4))
plot_torus(axes[0], torus_reference, "reference (grid)")
plot_torus(axes[1], torus_draws, "M-FFF draws")
grid, log_mass = torus_simulator.grid_log_posterior(x_seam)
axes[2].pcolormesh(grid[..., 0], grid[..., 1], log_mass.exp(), shading="auto")
axes[2].set(xlabel="a", ylabel="b", title="exact posterior on the grid")
figure.tight_layout()

# %% [markdown]
# The mass of a straddles +-pi (left and right edges are the same place on the torus), and b
# has two modes half a turn apart; `benchmarks/fff.py` compares this with NPE and FMPE on a box
# parameterisation.
#
# ## Unconditional density estimation on the sphere
#
# Outside SBI, `fit_flow(points, "sphere")` fits an M-FFF to directional data and returns an
# object with `log_prob(points)` and `sample(shape)`.

# %%
torch.manual_seed(0)
mean_direction = torch.tensor([0.0, 0.6, 0.8])
directions = VonMisesFisher(mean_direction, 8.0).sample((2000,))
flow = fit_flow(directions, "sphere", num_steps=10 if QUICK else 1500, hidden_features=64)
held_out = VonMisesFisher(mean_direction, 8.0).sample((500,))
with torch.no_grad():
    flow_nll = -float(flow.log_prob(held_out).mean())
print(
    f"held-out NLL: flow {flow_nll:.3f}, true "
    f"{-float(VonMisesFisher(mean_direction, 8.0).log_prob(held_out).mean()):.3f}, uniform "
    f"{math.log(4 * math.pi):.3f}"
)
new_directions = flow.sample((1000,))
print("samples on the sphere:", bool(((new_directions.norm(dim=-1) - 1).abs() < 1e-5).all()))
