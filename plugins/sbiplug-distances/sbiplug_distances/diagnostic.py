"""The ``posterior_modes`` diagnostic: how many modes, how much mass in each, the path between.

For each observation the study's posterior draws are clustered by a learned density-based
distance (Sorrenson et al., ICML 2025, https://arxiv.org/abs/2407.09297) with
:func:`~sbiplug_distances.modes.find_modes`; the density is the posterior's own ``log_prob`` at
the observation where it has one, else a flow fitted on the draws. The result holds, per
observation, the number of modes, their masses, each mode's highest-density draw and the
geodesics between those, and draws the draws coloured by mode with the geodesics on top.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from sbiplug import Diagnostic, DiagnosticContext, DiagnosticResult
from sbiplug.toolkit import (
    DiagnosticInputError,
    OptionError,
    check_int,
    check_positive,
    check_probability,
    derive_seed,
    figure_and_axes,
    parameter_names,
    posterior_draws,
    require_observations,
    require_posterior,
    require_variables,
    resolve_progress,
    resolve_seed,
)
from sbiplug_distances.distance import DensityDistance
from sbiplug_distances.modes import find_modes

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["PosteriorModesDiagnostic"]

NAME = "posterior_modes"
DENSITIES = ("auto", "posterior", "flow")


class PosteriorModesDiagnostic(Diagnostic):
    """Count the posterior's modes per observation by density-based distance.

    Arguments:
        num_draws: Posterior draws clustered per observation.
        density: ``"auto"`` (the posterior's ``log_prob`` where it has one, else a flow),
            ``"posterior"`` or ``"flow"`` (a spline flow fitted on the draws).
        beta: Exponent of the density-based metric (dimension-adapted: ``p^(-beta/D)``).
        num_neighbors: ``k`` of the kNN graph on the draws.
        max_modes: Upper bound on the modes (clusters of the over-clustering).
        min_mass: Clusters with a smaller share of the draws are not modes.
        valley: Separate modes need a density dip below this share of the lower peak.
        num_points: Points per stored geodesic.
        seed: Seed of the draws and flows (default: the context's seed, else 0).
        show_progress_bars: Overrides the context's setting when given.
    """

    name = NAME

    def __init__(
        self,
        *,
        num_draws: int = 1000,
        density: str = "auto",
        beta: float = 1.0,
        num_neighbors: int = 10,
        max_modes: int = 8,
        min_mass: float = 0.03,
        valley: float = 0.2,
        num_points: int = 32,
        seed: int | None = None,
        show_progress_bars: bool | None = None,
    ) -> None:
        self.num_draws = check_int("num_draws", num_draws, minimum=20, owner=NAME)
        if density not in DENSITIES:
            raise OptionError(f"{NAME}: density must be one of {DENSITIES}, got {density!r}")
        self.density = density
        self.beta = check_positive("beta", beta, owner=NAME)
        self.num_neighbors = check_int("num_neighbors", num_neighbors, minimum=1, owner=NAME)
        self.max_modes = check_int("max_modes", max_modes, minimum=1, owner=NAME)
        self.min_mass = check_probability("min_mass", min_mass, owner=NAME)
        self.valley = check_probability("valley", valley, owner=NAME)
        self.num_points = check_int("num_points", num_points, minimum=3, owner=NAME)
        self.seed = seed
        self.show_progress_bars = show_progress_bars

    def run(self, context: DiagnosticContext) -> DiagnosticResult:
        self._check_manifold(context)
        seed = resolve_seed(self.seed, context)
        progress = resolve_progress(self.show_progress_bars, context)
        observations = require_observations(context, NAME)
        draws = self._draws(context, observations, seed, progress)
        results = []
        for index in range(len(observations)):
            distance = DensityDistance(
                self._density(context, observations[index : index + 1]),
                beta=self.beta,
                num_neighbors=self.num_neighbors,
                num_points=self.num_points,
                seed=derive_seed(seed, f"flow-{index}"),
                show_progress_bars=progress,
            ).fit(draws[index])
            results.append(
                find_modes(
                    draws[index],
                    distance,
                    max_modes=self.max_modes,
                    min_mass=self.min_mass,
                    valley=self.valley,
                )
            )
        names = parameter_names(context, draws.shape[-1])
        data = self._dataset(draws, results, names)
        counts = [m.num_modes for m in results]
        listing = "; ".join(
            f"#{i}: {m.num_modes} ({', '.join(f'{w:.2f}' for w in m.masses.tolist())})"
            for i, m in enumerate(results)
        )
        return DiagnosticResult(
            name=NAME,
            statistic=float(max(counts)),
            summary={
                "mean_num_modes": float(np.mean(counts)),
                "num_multimodal": float(sum(c > 1 for c in counts)),
                "num_observations": float(len(results)),
            },
            data=data,
            message=f"posterior modes (masses) per observation: {listing}",
        )

    # -- inputs -----------------------------------------------------------------------------

    @staticmethod
    def _check_manifold(context: DiagnosticContext) -> None:
        manifold = getattr(context.simulator, "parameter_manifold", "euclidean")
        if manifold != "euclidean":
            name = getattr(context.simulator, "name", type(context.simulator).__name__)
            raise DiagnosticInputError(
                f"diagnostic {NAME!r} supports Euclidean parameters only; simulator {name!r} "
                f"has parameters on {manifold!r} (density-based distances on manifolds are not "
                "implemented)"
            )

    def _draws(
        self, context: DiagnosticContext, observations: Tensor, seed: int, progress: bool
    ) -> Tensor:
        samples = context.posterior_samples
        if samples is not None and samples.shape[0] == len(observations):
            if samples.shape[1] < self.num_draws:
                raise DiagnosticInputError(
                    f"diagnostic {NAME!r} needs {self.num_draws} posterior draws per observation "
                    f"(num_draws), the context has {samples.shape[1]}: lower num_draws or draw more"
                )
            draws = samples[:, : self.num_draws]
        else:
            posterior = require_posterior(context, NAME)
            torch.manual_seed(derive_seed(seed, "draws"))
            draws = posterior_draws(posterior, observations, self.num_draws, progress)
            draws = draws.transpose(0, 1)  # (observations, draws, D)
        draws = draws.float()
        if not bool(torch.isfinite(draws).all()):
            raise DiagnosticInputError(f"diagnostic {NAME!r}: posterior draws are not finite")
        return draws

    def _density(self, context: DiagnosticContext, x_o: Tensor) -> Any:
        posterior = context.posterior
        has_log_prob = posterior is not None and callable(getattr(posterior, "log_prob", None))
        if self.density == "flow" or (self.density == "auto" and not has_log_prob):
            return None  # DensityDistance fits a flow on the draws
        if not has_log_prob:
            raise DiagnosticInputError(
                f"diagnostic {NAME!r}: density='posterior' needs a posterior with log_prob"
            )
        from sbiplug_distances.densities import as_density

        return as_density(posterior, x=x_o)

    # -- data and figure --------------------------------------------------------------------

    def _dataset(self, draws: Tensor, results: list, names: list[str]) -> Any:
        import xarray as xr

        num_obs, num_draws, dim = draws.shape
        k = max(1, max(m.num_modes for m in results))
        num_pairs = max(1, k * (k - 1) // 2)
        mass = np.full((num_obs, k), np.nan)
        representative = np.full((num_obs, k, dim), np.nan)
        geodesic = np.full((num_obs, num_pairs, self.num_points, dim), np.nan)
        pair = np.full((num_obs, num_pairs, 2), -1, dtype=np.int64)
        valley = np.full((num_obs, num_pairs), np.nan)
        labels = np.zeros((num_obs, num_draws), dtype=np.int64)
        for i, modes in enumerate(results):
            labels[i] = modes.labels.numpy()
            mass[i, : modes.num_modes] = modes.masses.numpy()
            representative[i, : modes.num_modes] = draws[i, modes.representatives].numpy()
            count = len(modes.pairs)
            geodesic[i, :count] = modes.geodesics.numpy()
            pair[i, :count] = modes.pairs.numpy()
            valley[i, :count] = modes.valleys.numpy()
        data = xr.Dataset(
            {
                "draws": (("observation", "draw", "parameter"), draws.numpy()),
                "label": (("observation", "draw"), labels),
                "num_modes": ("observation", np.array([m.num_modes for m in results])),
                "mass": (("observation", "mode"), mass),
                "representative": (("observation", "mode", "parameter"), representative),
                "geodesic": (("observation", "pair", "point", "parameter"), geodesic),
                "pair_modes": (("observation", "pair", "end"), pair),
                "valley": (("observation", "pair"), valley),
            },
            coords={
                "observation": np.arange(num_obs),
                "parameter": np.array(names, dtype=object).astype(str),
                "mode": np.arange(k),
            },
        )
        data.attrs.update(
            {
                "beta": self.beta,
                "adapted": 1,
                "valley_threshold": self.valley,
                "min_mass": self.min_mass,
                "density": self.density,
            }
        )
        return data

    def plot(
        self, result: DiagnosticResult, ax: Axes | None = None, *, observation: int = 0
    ) -> Figure:
        """Draws of one observation (first two parameters) coloured by mode, with geodesics."""
        data = result.data
        require_variables(data, ("draws", "label", "geodesic", "representative"), NAME)
        figure, ax = figure_and_axes(ax, figsize=(5, 4), layout="constrained")
        draws = np.asarray(data["draws"].values[observation], dtype=float)
        labels = np.asarray(data["label"].values[observation])
        names = [str(n) for n in data["parameter"].values]
        second = 1 if draws.shape[1] > 1 else 0
        count = int(data["num_modes"].values[observation])
        colours = [f"C{k % 10}" for k in labels]
        ax.scatter(draws[:, 0], draws[:, second], s=4, c=colours, alpha=0.5, linewidths=0)
        for path in np.asarray(data["geodesic"].values[observation], dtype=float):
            if np.isfinite(path).all():
                ax.plot(path[:, 0], path[:, second], color="k", lw=1.2)
        peaks = np.asarray(data["representative"].values[observation, :count], dtype=float)
        ax.scatter(peaks[:, 0], peaks[:, second], marker="*", s=120, c="k", zorder=3)
        masses = np.asarray(data["mass"].values[observation, :count], dtype=float)
        ax.set_xlabel(names[0])
        ax.set_ylabel(names[second])
        ax.set_title(
            f"observation {observation}: {count} mode(s), masses "
            + ", ".join(f"{w:.2f}" for w in masses),
            fontsize=9,
        )
        return figure
