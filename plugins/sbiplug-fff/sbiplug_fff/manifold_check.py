"""The ``fif_manifold`` diagnostic: does each observation lie on the simulations' manifold?

Sorrenson et al., *Lifting Architectural Constraints of Injective Flows* (ICLR 2024,
arXiv 2306.01843). A free-form injective flow of the simulations' x gives every x two scores:
its reconstruction error ||x - g(f(x))||^2 (how far off the learned d-dimensional manifold it
lies) and its exact log-density on the manifold (how typical its projection is). The flow is
the study's own FIF summary net when the estimator has one, else one fitted here on part of
the simulations. Each observation's scores are placed among those of held-out simulations;
its p-value is the smaller of the two empirical tail p-values (reconstruction error: right
tail; log-density: left tail) times two, and observations below ``alpha / num_observations``
(Bonferroni) are flagged.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from sbiplug import Diagnostic, DiagnosticContext, DiagnosticResult
from sbiplug.sbi_internals import trained_network
from sbiplug.toolkit import (
    DiagnosticInputError,
    bonferroni_p_value,
    check_positive_int,
    check_probability,
    figure_and_axes,
    monte_carlo_p_value,
    require_observations,
    resolve_progress,
    resolve_seed,
)
from sbiplug_fff.injective import FreeFormInjectiveFlow
from sbiplug_fff.injective_fit import fit_injective_flow
from sbiplug_fff.summaries import find_fif_summary

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["FIFManifoldDiagnostic", "ManifoldWarning", "manifold_scores"]


class ManifoldWarning(UserWarning):
    """Some observations lie off the simulations' manifold or in its low-density parts."""


def manifold_scores(
    flow: FreeFormInjectiveFlow, x: Tensor, front: Any = None
) -> tuple[Tensor, Tensor]:
    """Log-density on the manifold ``(N,)`` and reconstruction error ``(N,)`` of x ``(N, ...)``.

    ``front`` maps raw x to what the flow sees (e.g. an estimator's z-scoring).
    """
    with torch.no_grad():
        seen = x if front is None else front(x)
    seen = seen.reshape(len(seen), -1).float()
    return flow.log_prob(seen).double(), flow.reconstruction_error(seen).double()


class FIFManifoldDiagnostic(Diagnostic):
    """Manifold log-density and reconstruction error of the observations vs. the simulations.

    Arguments:
        latent_features: Manifold dimension d of a flow fitted here (default: the number of
            parameters); unused when the estimator has a ``fif`` summary net.
        alpha: Family-wise level (Bonferroni over observations).
        reference_fraction: Share of the simulations held out as the reference when the flow
            is fitted here.
        num_reference: Fresh simulations drawn as the reference when the flow is the
            estimator's (it has seen the training x); the training x are used without simulator.
        num_steps: Training steps of a flow fitted here.
        seed, show_progress_bars: As elsewhere (default: the context's).
    """

    name = "fif_manifold"

    def __init__(
        self,
        *,
        latent_features: int | None = None,
        alpha: float = 0.05,
        reference_fraction: float = 0.2,
        num_reference: int = 1000,
        num_steps: int = 2000,
        seed: int | None = None,
        show_progress_bars: bool | None = None,
    ) -> None:
        owner = "fif_manifold"
        self.latent_features = (
            None
            if latent_features is None
            else check_positive_int("latent_features", latent_features, owner=owner)
        )
        self.alpha = check_probability("alpha", alpha, owner=owner)
        self.reference_fraction = check_probability(
            "reference_fraction", reference_fraction, owner=owner
        )
        self.num_reference = check_positive_int("num_reference", num_reference, owner=owner)
        self.num_steps = check_positive_int("num_steps", num_steps, owner=owner)
        self.seed = seed
        self.show_progress_bars = show_progress_bars

    def run(self, context: DiagnosticContext) -> DiagnosticResult:
        seed = resolve_seed(self.seed, context)
        x = self._simulations(context)
        observations = require_observations(context, self.name, tuple(x.shape[1:]))
        found = find_fif_summary(trained_network(context.estimator)) if context.estimator else None
        if found is not None:
            summary, front = found
            flow, source = summary.flow, "estimator's fif summary net"
            reference_x = self._fresh_reference(context, seed, x)
        else:
            (flow, reference_x), front = self._fit(context, x, seed), None
            source = "fitted by the diagnostic"
        log_density, error = manifold_scores(flow, observations, front)
        reference_density, reference_error = manifold_scores(flow, reference_x, front)
        p_error = torch.as_tensor(monte_carlo_p_value(error.numpy(), reference_error.numpy()))
        p_density = torch.as_tensor(
            monte_carlo_p_value(-log_density.numpy(), -reference_density.numpy())
        )
        p_values = torch.clamp(2 * torch.minimum(p_error, p_density), max=1.0)
        level = self.alpha / len(observations)
        flagged = p_values < level
        if bool(flagged.any()):
            listing = ", ".join(
                f"#{i} (p={float(p_values[i]):.3g})" for i in torch.nonzero(flagged).flatten()
            )
            warnings.warn(
                f"observations off the simulations' manifold (p < {level:.3g}): {listing}",
                ManifoldWarning,
                stacklevel=2,
            )
        data = self._dataset(
            log_density,
            error,
            p_density,
            p_error,
            p_values,
            flagged,
            reference_density,
            reference_error,
        )
        data.attrs.update(
            {
                "flow": source,
                "latent_features": flow.latent_features,
                "level": level,
                "alpha": self.alpha,
                "num_reference": len(reference_x),
            }
        )
        num_flagged = int(flagged.sum())
        return DiagnosticResult(
            name=self.name,
            statistic=float(error.max() / reference_error.median()),
            p_value=bonferroni_p_value(p_values),
            passed=num_flagged == 0,
            threshold=self.alpha,
            summary={
                "num_flagged": float(num_flagged),
                "num_observations": float(len(observations)),
                "median_reference_error": float(reference_error.median()),
            },
            data=data,
            message=(
                f"{num_flagged} of {len(observations)} observations off the manifold "
                f"(p < {self.alpha}/{len(observations)}; flow: {source})"
            ),
        )

    def _simulations(self, context: DiagnosticContext) -> Tensor:
        x = context.x
        if not isinstance(x, Tensor) or x.ndim < 2:
            raise DiagnosticInputError(
                f"diagnostic 'fif_manifold' needs the study's simulations x of shape (n, ...), "
                f"got {type(x).__name__ if not isinstance(x, Tensor) else tuple(x.shape)}"
            )
        x = x[torch.isfinite(x.flatten(1)).all(dim=1)].float()
        if len(x) < 50:
            raise DiagnosticInputError(
                f"diagnostic 'fif_manifold' needs at least 50 finite simulations, got {len(x)}"
            )
        return x

    def _fresh_reference(self, context: DiagnosticContext, seed: int, x: Tensor) -> Tensor:
        if context.simulator is None:
            return x[: self.num_reference]
        theta = context.simulator.sample_prior(self.num_reference, seed=seed + 1)
        fresh = context.simulator.simulate(theta, seed=seed + 2)
        return fresh[torch.isfinite(fresh.flatten(1)).all(dim=1)].float()

    def _fit(
        self, context: DiagnosticContext, x: Tensor, seed: int
    ) -> tuple[FreeFormInjectiveFlow, Tensor]:
        """A flow fitted on part of x, and the held-out rest as the reference."""
        d = self.latent_features
        if d is None:
            d = context.theta.shape[-1] if context.theta is not None else None
            d = d or (context.simulator.num_parameters if context.simulator else None)
        if d is None:
            raise DiagnosticInputError(
                "diagnostic 'fif_manifold': give latent_features (no parameters to count)"
            )
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
        held = max(1, round(self.reference_fraction * len(x)))
        flow = fit_injective_flow(
            x[order[held:]].flatten(1),
            int(d),
            num_steps=self.num_steps,
            seed=seed,
            show_progress_bars=resolve_progress(self.show_progress_bars, context),
        )
        return flow, x[order[:held]]

    @staticmethod
    def _dataset(*arrays: Tensor) -> Any:
        import xarray as xr

        names = (
            "log_density",
            "reconstruction_error",
            "p_density",
            "p_reconstruction",
            "p_value",
            "flagged",
        )
        variables = {
            name: (
                "observation",
                array.double().numpy() if name != "flagged" else array.numpy().astype(np.int8),
            )
            for name, array in zip(names, arrays[:6])
        }
        variables["reference_log_density"] = ("reference", arrays[6].numpy())
        variables["reference_reconstruction_error"] = ("reference", arrays[7].numpy())
        return xr.Dataset(variables)

    def plot(self, result: DiagnosticResult, ax: Axes | None = None) -> Figure:
        """Reference simulations (grey) and observations (blue; red: flagged) in the plane of
        log reconstruction error and manifold log-density."""
        data = result.data
        if data is None or "reference_log_density" not in data:
            raise ValueError("this result has no 'reference_log_density' data to plot")
        figure, ax = figure_and_axes(ax, figsize=(5, 4), layout="constrained")
        ax.scatter(
            np.log10(data["reference_reconstruction_error"].values),
            data["reference_log_density"].values,
            s=4,
            c="0.7",
            label="simulations",
        )
        flagged = data["flagged"].values.astype(bool)
        error = np.log10(data["reconstruction_error"].values)
        density = data["log_density"].values
        ax.scatter(error[~flagged], density[~flagged], c="tab:blue", s=20, label="observation")
        if flagged.any():
            ax.scatter(error[flagged], density[flagged], c="tab:red", s=20, label="flagged")
        ax.set_xlabel("log10 reconstruction error (off the manifold)")
        ax.set_ylabel("log-density on the manifold")
        ax.set_title(result.message or self.name, fontsize=9)
        ax.legend(fontsize=8)
        return figure
