"""The ``ood`` diagnostic: is each observation something the simulator produces?

A normalizing flow is trained on part of the study's simulations and stopped early (an
"immature" checkpoint, Montazeran & Köthe 2025). Its layer-wise gradient-norm features
(Dauncey et al., TMLR 2024) are fitted on a second, disjoint part, and a third part gives the
reference distribution of scores of unseen simulations. Each observation gets its score's
percentile among the reference scores and an empirical p-value; observations whose p-value
falls below ``alpha / num_observations`` (Bonferroni) are flagged as out-of-distribution.

References:
    Approximations to the Fisher Information Metric of Deep Generative Models for
    Out-Of-Distribution Detection (Dauncey, Holmes, Williams, Falck; TMLR 2024)
    https://arxiv.org/abs/2403.01485

    OOD Detection with immature Models (Montazeran, Köthe; 2025)
    https://arxiv.org/abs/2502.00820
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from sbiplug import Diagnostic, DiagnosticContext, DiagnosticResult
from sbiplug.toolkit import (
    DiagnosticInputError,
    bonferroni_p_value,
    check_int,
    check_probability,
    figure_and_axes,
    monte_carlo_p_value,
    require_observations,
    resolve_progress,
    resolve_seed,
)
from sbiplug_ood.baselines import group_log_prob
from sbiplug_ood.density import train_density
from sbiplug_ood.gradients import MIN_FIT_GROUPS, GradientNormScorer

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["OODDiagnostic", "OODWarning", "empirical_p_values"]


class OODWarning(UserWarning):
    """Some observations are out of distribution for the simulator."""


def empirical_p_values(scores: Tensor, reference: Tensor) -> tuple[Tensor, Tensor]:
    """Percentiles and right-tailed empirical p-values of scores among reference scores.

    Arguments:
        scores: Scores to place, shape ``(m,)``.
        reference: Scores of in-distribution inputs, shape ``(n,)``.

    Returns:
        Percentiles in [0, 100] (ties counted one half), shape ``(m,)``, and p-values
        ``(1 + #{reference >= score}) / (n + 1)``, shape ``(m,)``.
    """
    below = (reference[None, :] < scores[:, None]).double().sum(dim=1)
    ties = (reference[None, :] == scores[:, None]).double().sum(dim=1)
    percentiles = 100.0 * (below + 0.5 * ties) / len(reference)
    p_values = monte_carlo_p_value(scores.double().numpy(), reference.double().numpy())
    return percentiles, torch.from_numpy(p_values)


class OODDiagnostic(Diagnostic):
    """Gradient-norm OOD scores of the observations against held-out simulations.

    Arguments:
        checkpoint: The training epoch whose model scores (early by default).
        flow: ``"nsf"``, ``"maf"``, ``"realnvp"`` or a zuko flow class, see :func:`train_density`.
        density_model: An already trained density model of x (``log_prob(x)``) to reuse instead
            of training one; it must not have seen ``context.x``, which is then split only into
            the fit and reference halves.
        alpha: Family-wise level: an observation is an outlier when its p-value is below
            ``alpha / num_observations``.
        train_fraction: Share of the simulations the flow is trained on; the rest is split
            50/50 into the fit half and the reference half.
        num_simulations: Simulations drawn from the prior when the context has none.
        hidden_features: Hidden widths of the flow's networks.
        transforms: Number of flow transforms.
        training_batch_size: Minibatch size of the flow's training.
        learning_rate: Adam's learning rate.
        seed: Seed of the split and the training (default: the context's seed, else 0).
        show_progress_bars: Overrides the context's setting when given.
    """

    name = "ood"

    def __init__(
        self,
        *,
        checkpoint: int = 2,
        flow: Any = "nsf",
        density_model: nn.Module | None = None,
        alpha: float = 0.05,
        train_fraction: float = 0.5,
        num_simulations: int = 2000,
        hidden_features: tuple[int, ...] = (64, 64),
        transforms: int = 3,
        training_batch_size: int = 64,
        learning_rate: float = 1e-3,
        seed: int | None = None,
        show_progress_bars: bool | None = None,
    ) -> None:
        self.checkpoint = check_int("checkpoint", checkpoint, minimum=0, owner="ood")
        self.flow = flow
        self.density_model = density_model
        self.alpha = check_probability("alpha", alpha, owner="ood")
        self.train_fraction = check_probability("train_fraction", train_fraction, owner="ood")
        self.num_simulations = num_simulations
        self.hidden_features = tuple(hidden_features)
        self.transforms = transforms
        self.training_batch_size = training_batch_size
        self.learning_rate = learning_rate
        self.seed = seed
        self.show_progress_bars = show_progress_bars

    # -- run ----------------------------------------------------------------------------------

    def run(self, context: DiagnosticContext) -> DiagnosticResult:
        seed = resolve_seed(self.seed, context)
        progress = resolve_progress(self.show_progress_bars, context)
        x = self._simulations(context, seed)
        observations = self._observations(context, x)
        train, fit, reference = self._split(len(x), seed)

        if self.density_model is not None:
            model, flow_name = self.density_model, type(self.density_model).__name__
        else:
            models = train_density(
                x[train],
                self.checkpoint,
                [self.checkpoint],
                flow=self.flow,
                hidden_features=self.hidden_features,
                transforms=self.transforms,
                batch_size=self.training_batch_size,
                learning_rate=self.learning_rate,
                seed=seed,
                show_progress_bars=progress,
            )
            model = models[self.checkpoint]
            flow_name = self.flow if isinstance(self.flow, str) else type(self.flow).__name__

        scorer = GradientNormScorer(model, show_progress_bars=progress).fit(x[fit])
        reference_scores = scorer.score(x[reference])
        scores = scorer.score(observations)
        percentiles, p_values = empirical_p_values(scores, reference_scores)
        level = self.alpha / len(observations)
        outliers = p_values < level
        self._warn(outliers, p_values, percentiles, level)

        data = self._dataset(
            scorer,
            model,
            x,
            observations,
            scores,
            reference_scores,
            percentiles,
            p_values,
            outliers,
            reference,
        )
        data.attrs.update(
            {
                "checkpoint": self.checkpoint if self.density_model is None else -1,
                "flow": str(flow_name),
                "num_train": len(train),
                "num_fit": len(fit),
                "num_reference": len(reference),
                "alpha": self.alpha,
                "level": level,
                "threshold_score": float(np.quantile(reference_scores.numpy(), 1.0 - level)),
            }
        )
        adjusted = bonferroni_p_value(p_values)
        num_outliers = int(outliers.sum())
        return DiagnosticResult(
            name=self.name,
            statistic=float(percentiles.max()),
            p_value=adjusted,
            passed=num_outliers == 0,
            threshold=self.alpha,
            summary={
                "num_outliers": float(num_outliers),
                "num_observations": float(len(observations)),
                "num_reference": float(len(reference)),
            },
            data=data,
            message=(
                f"{num_outliers} of {len(observations)} observations out of distribution "
                f"(p < {self.alpha}/{len(observations)}); highest score percentile "
                f"{float(percentiles.max()):.1f}"
            ),
        )

    def _simulations(self, context: DiagnosticContext, seed: int) -> Tensor:
        x = context.x
        if x is None:
            if context.simulator is None:
                raise DiagnosticInputError(
                    "diagnostic 'ood' needs the study's simulations (context.x) or a simulator "
                    "to draw them from"
                )
            theta = context.simulator.sample_prior(self.num_simulations, seed=seed)
            x = context.simulator.simulate(theta, seed=seed)
        if not isinstance(x, Tensor) or x.ndim < 2:
            raise DiagnosticInputError(
                f"diagnostic 'ood': context.x must have shape (n, ...), got {x!r}"
            )
        finite = torch.isfinite(x.flatten(1)).all(dim=1)
        x = x[finite].float()
        smallest_fit = 2 * MIN_FIT_GROUPS
        needed = (
            smallest_fit
            if self.density_model is not None
            else int(np.ceil(smallest_fit / (1.0 - self.train_fraction))) + 2
        )
        if len(x) < needed:
            raise DiagnosticInputError(
                f"diagnostic 'ood' needs at least {needed} finite simulations, got {len(x)}"
            )
        return x

    def _observations(self, context: DiagnosticContext, x: Tensor) -> Tensor:
        return require_observations(context, self.name, observation_shape=tuple(x.shape[1:]))

    def _split(self, n: int, seed: int) -> tuple[Tensor, Tensor, Tensor]:
        """Disjoint train / fit / reference indices; fit and reference are 50/50 of the rest."""
        permutation = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        num_train = 0 if self.density_model is not None else round(self.train_fraction * n)
        rest = permutation[num_train:]
        half = len(rest) // 2
        return permutation[:num_train], rest[:half], rest[half:]

    @staticmethod
    def _warn(outliers: Tensor, p_values: Tensor, percentiles: Tensor, level: float) -> None:
        if bool(outliers.any()):
            listing = ", ".join(
                f"#{i} (p={p_values[i]:.3g}, percentile {percentiles[i]:.1f})"
                for i in torch.nonzero(outliers).flatten().tolist()
            )
            warnings.warn(
                f"observations out of distribution for the simulator (p < {level:.3g}): "
                f"{listing}; a posterior for them extrapolates",
                OODWarning,
                stacklevel=3,
            )

    @staticmethod
    def _dataset(
        scorer: GradientNormScorer,
        model: nn.Module,
        x: Tensor,
        observations: Tensor,
        scores: Tensor,
        reference_scores: Tensor,
        percentiles: Tensor,
        p_values: Tensor,
        outliers: Tensor,
        reference: Tensor,
    ) -> Any:
        import xarray as xr

        kept = scorer.kept
        return xr.Dataset(
            {
                "score": ("observation", scores.numpy()),
                "percentile": ("observation", percentiles.numpy()),
                "p_value": ("observation", p_values.numpy()),
                "outlier": ("observation", outliers.numpy().astype(np.int8)),
                "nll": ("observation", -group_log_prob(model, observations).numpy()),
                "reference_score": ("reference", reference_scores.numpy()),
                "reference_nll": ("reference", -group_log_prob(model, x[reference]).numpy()),
                "feature_mean": ("feature", scorer.mean[kept].numpy()),
                "feature_std": ("feature", scorer.std[kept].numpy()),
            },
            coords={
                "observation": np.arange(len(observations)),
                "reference": np.arange(len(reference)),
                "feature": np.array(scorer.kept_feature_names, dtype=object).astype(str),
            },
        )

    # -- plot ---------------------------------------------------------------------------------

    def plot(self, result: DiagnosticResult, ax: Axes | None = None) -> Figure:
        """Histogram of reference scores, observations as vertical lines (red: outliers)."""
        data = result.data
        if data is None or "reference_score" not in data:
            raise ValueError("this result has no 'reference_score' data to plot")
        figure, ax = figure_and_axes(ax, figsize=(6, 3.5), layout="constrained")
        reference = np.asarray(data["reference_score"].values, dtype=float)
        reference = reference[np.isfinite(reference)]
        scores = np.asarray(data["score"].values, dtype=float)
        outliers = np.asarray(data["outlier"].values, dtype=bool)
        # Outliers can score orders of magnitude above the reference: draw those at the
        # right edge, labelled with their score, so the reference histogram stays readable.
        low, high = float(reference.min()), float(reference.max())
        edge = high + 0.3 * (high - low)
        ax.hist(reference, bins=40, density=True, color="0.75", label="held-out simulations")
        for i, (score, outlier) in enumerate(zip(scores, outliers)):
            shown = min(score, edge) if np.isfinite(score) or score > 0 else low
            ax.axvline(
                shown,
                color="tab:red" if outlier else "tab:blue",
                lw=1.5,
                label=("outlier" if outlier else "observation") if i == 0 or outlier else None,
            )
            if shown < score:
                ax.annotate(
                    f"#{i}: {score:.3g}",
                    (shown, 0.9),
                    xycoords=("data", "axes fraction"),
                    ha="right",
                    fontsize=7,
                    color="tab:red",
                )
        threshold = data.attrs.get("threshold_score")
        if threshold is not None:
            ax.axvline(float(threshold), color="k", ls="--", lw=1, label="threshold")
        ax.set_xlabel("gradient-norm OOD score (higher = more atypical)")
        ax.set_ylabel("density")
        ax.set_title(result.message or "ood", fontsize=9)
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles))
        ax.legend(unique.values(), unique.keys(), fontsize=8)
        return figure
