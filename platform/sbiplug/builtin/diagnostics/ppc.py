"""Posterior predictive check (PPC) against the observations.

Gelman, Meng and Stern (1996), "Posterior predictive assessment of model fitness via realized
discrepancies", Statistica Sinica 6(4); Gelman et al. (2013), "Bayesian Data Analysis", ch. 6.

Data simulated from posterior draws, ``x_rep ~ p(x | theta)``, ``theta ~ q(theta | x_o)``,
should look like ``x_o``. Two posterior predictive p-values per observation: one per data
dimension (two-sided tail probability of ``x_o`` within the predictive marginal) and one for
a global discrepancy, the standardised distance to the predictive mean
``d(x) = ||(x - mean) / std||`` (fraction of replicates at least as far as ``x_o``).
Small p-values flag a posterior (or a model) that cannot reproduce the observation.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

from sbiplug.diagnostic import Diagnostic, DiagnosticContext, DiagnosticResult
from sbiplug.toolkit import (
    DiagnosticInputError,
    derive_seed,
    figure_and_axes,
    monte_carlo_p_value,
    require_observations,
    require_variables,
    resolve_progress,
    resolve_seed,
    seeded,
    significance,
)

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from torch import Tensor

    from sbiplug.simulator import Simulator

__all__ = ["PosteriorPredictiveCheck"]

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


class PosteriorPredictiveCheck(Diagnostic):
    """Posterior predictive p-values of the observations.

    ``p_value`` is the Bonferroni-adjusted (over observations) smallest distance p-value;
    ``passed`` when it exceeds ``alpha`` (the ``threshold``). ``statistic`` is the largest
    ratio of ``d(x_o)`` to the median replicate distance (about 1 for a typical ``x_o``).

    Arguments:
        num_samples: Posterior draws (and so replicated data sets) per observation.
        alpha: Family-wise significance level.
        seed: Seed for draws and simulations; defaults to the context's seed.
        show_progress_bars: Show progress bars; defaults to the context's setting.
    """

    name = "ppc"

    def __init__(
        self,
        num_samples: int = 200,
        alpha: float = 0.05,
        seed: int | None = None,
        show_progress_bars: bool | None = None,
    ) -> None:
        if num_samples < 10:
            raise ValueError(f"ppc: num_samples must be >= 10, got {num_samples}")
        self.num_samples = num_samples
        self.alpha = alpha
        self.seed = seed
        self.show_progress_bars = show_progress_bars

    def run(self, context: DiagnosticContext) -> DiagnosticResult:
        """Simulate replicated data from posterior draws and locate each ``x_o`` in it.

        Returns:
            A result whose data holds ``posterior_predictive`` along
            ``(observation, ppc_draw, data_dim)``, ``x_observed``, ``predictive_quantile``
            (with a ``quantile`` dim), ``p_value_dim`` and ``distance_p_value``.
        """
        import numpy as np
        import xarray as xr

        observations = require_observations(context, self.name)
        simulator = context.simulator
        if simulator is None:
            raise DiagnosticInputError("diagnostic 'ppc' needs a simulator to replicate data")
        stored = context.posterior_samples
        if stored is None and context.posterior is None:
            raise DiagnosticInputError("diagnostic 'ppc' needs a posterior or posterior_samples")
        if stored is not None and (stored.ndim != 3 or len(stored) != len(observations)):
            raise DiagnosticInputError(
                "diagnostic 'ppc': posterior_samples must have shape "
                f"(num_observations={len(observations)}, num_samples, num_parameters), got "
                f"{tuple(stored.shape)}"
            )
        seed = resolve_seed(self.seed, context)
        progress = resolve_progress(self.show_progress_bars, context)

        replicates, observed = [], []
        for index, x_o in enumerate(observations):
            with seeded(derive_seed(seed, f"posterior {index}")):
                if stored is not None:
                    theta = stored[index, : self.num_samples].float()
                else:
                    with warnings.catch_warnings():
                        warnings.filterwarnings("ignore", message=".*unnormalized.*")
                        theta = context.posterior.sample(
                            (self.num_samples,), x=x_o, show_progress_bars=progress
                        ).float()
            theta = _inside_support(simulator, theta, index)
            x_rep = simulator.simulate(theta, seed=derive_seed(seed, f"simulate {index}"))
            replicates.append(x_rep.reshape(len(x_rep), -1).numpy().astype(np.float64))
            observed.append(x_o.reshape(-1).numpy().astype(np.float64))
        replicated = _stack_padded(replicates)  # (observation, draw, data_dim)
        x_observed = np.stack(observed)  # (observation, data_dim)

        p_value_dim = _marginal_p_values(replicated, x_observed)
        distance_p_value, distance_ratio = _distance_p_values(replicated, x_observed)
        quantiles = np.nanquantile(replicated, QUANTILES, axis=1).transpose(1, 0, 2)

        data = xr.Dataset(
            {
                "posterior_predictive": (("observation", "ppc_draw", "data_dim"), replicated),
                "x_observed": (("observation", "data_dim"), x_observed),
                "predictive_quantile": (("observation", "quantile", "data_dim"), quantiles),
                "p_value_dim": (("observation", "data_dim"), p_value_dim),
                "distance_p_value": ("observation", distance_p_value),
                "distance_ratio": ("observation", distance_ratio),
            },
            coords={
                "observation": np.arange(len(x_observed)),
                "ppc_draw": np.arange(replicated.shape[1]),
                "data_dim": np.arange(replicated.shape[2]),
                "quantile": np.asarray(QUANTILES),
            },
            attrs={"alpha": self.alpha, "seed": seed},
        )
        num_observations = len(x_observed)
        verdict = significance(distance_p_value, self.alpha)
        message = (
            f"posterior predictive check over {num_observations} observation(s): "
            f"{'consistent' if verdict['passed'] else 'INCONSISTENT'} (smallest distance "
            f"p-value {distance_p_value.min():.3g}, Bonferroni-adjusted {verdict['p_value']:.3g})"
        )
        return DiagnosticResult(
            name=self.name,
            statistic=float(np.max(distance_ratio)),
            **verdict,
            summary={
                "distance_p_value_min": float(distance_p_value.min()),
                "p_value_dim_min": float(np.min(p_value_dim)),
                "fraction_dims_outside_90": float(np.mean(p_value_dim < 0.1)),
            },
            data=data,
            message=message,
        )

    def plot(self, result: DiagnosticResult, ax: Axes | None = None) -> Figure:
        """Predictive 50% and 90% intervals per data dimension, with the observations.

        At most the first five observations are drawn, side by side.
        """
        require_variables(result.data, ("predictive_quantile", "x_observed"), "ppc")
        data = result.data
        figure, ax = figure_and_axes(ax)
        quantiles = data["predictive_quantile"].transpose("observation", "quantile", "data_dim")
        levels = [float(q) for q in data["quantile"].values]
        shown = min(len(data["observation"]), 5)
        dims = range(data.sizes["data_dim"])
        width = 0.6 / shown
        for index in range(shown):
            q = quantiles.values[index]
            offset = [d - 0.3 + width * (index + 0.5) for d in dims]
            color = f"C{index}"
            ax.vlines(offset, q[levels.index(0.05)], q[levels.index(0.95)], color=color, lw=1)
            ax.vlines(
                offset,
                q[levels.index(0.25)],
                q[levels.index(0.75)],
                color=color,
                lw=4,
                label=f"observation {index}",
            )
            ax.plot(
                offset,
                data["x_observed"].values[index],
                "o",
                color="k",
                markersize=3,
                label="x_o" if index == 0 else None,
            )
        if len(dims) <= 20:
            ax.set_xticks(list(dims))
        ax.set_xlabel("data dimension")
        ax.set_ylabel("value")
        ax.set_title("Posterior predictive check (50% / 90% intervals)")
        ax.legend(fontsize="small")
        return figure


def _inside_support(simulator: Simulator, theta: Tensor, index: int) -> Tensor:
    """Drop draws the simulator would refuse (outside the prior support), with a warning."""
    inside = simulator.prior.support.check(theta)
    if inside.ndim > 1:
        inside = inside.all(dim=-1)
    if bool(inside.all()):
        return theta
    if not bool(inside.any()):
        raise DiagnosticInputError(
            f"diagnostic 'ppc': every posterior draw for observation {index} lies outside the "
            "prior support, so none can be simulated"
        )
    warnings.warn(
        f"diagnostic 'ppc': dropped {int((~inside).sum())} of {len(theta)} posterior draws "
        f"outside the prior support for observation {index}",
        stacklevel=3,
    )
    return theta[inside]


def _stack_padded(arrays: list[np.ndarray]) -> np.ndarray:
    """Stack ``(draws_i, data_dim)`` arrays, padding shorter ones with NaN rows."""
    import numpy as np

    longest = max(len(a) for a in arrays)
    padded = np.full((len(arrays), longest, arrays[0].shape[1]), np.nan)
    for index, array in enumerate(arrays):
        padded[index, : len(array)] = array
    return padded


def _marginal_p_values(replicated: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Two-sided tail probability of each ``x_o`` dimension, shape ``(observation, data_dim)``."""
    import numpy as np

    valid = np.isfinite(replicated).sum(axis=1).clip(min=1)
    below = (replicated <= observed[:, None, :]).sum(axis=1) / valid
    above = (replicated >= observed[:, None, :]).sum(axis=1) / valid
    return np.minimum(1.0, 2.0 * np.minimum(below, above))


def _distance_p_values(
    replicated: np.ndarray, observed: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """P-value and relative size of the standardised distance of ``x_o``, per observation."""
    import numpy as np

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        mean = np.nanmean(replicated, axis=1, keepdims=True)
        std = np.nanstd(replicated, axis=1, keepdims=True)
    std = np.where(np.isfinite(std) & (std > 0), std, 1.0)
    mean = np.where(np.isfinite(mean), mean, 0.0)
    distance_rep = np.sqrt(np.nansum(((replicated - mean) / std) ** 2, axis=2))
    distance_rep[np.isnan(replicated).all(axis=2)] = np.nan  # padding rows
    distance_obs = np.sqrt(np.nansum(((observed[:, None, :] - mean) / std) ** 2, axis=2))
    p_value = monte_carlo_p_value(distance_obs[:, 0], distance_rep)
    ratio = distance_obs[:, 0] / np.nanmedian(distance_rep, axis=1).clip(min=1e-12)
    return p_value, ratio
