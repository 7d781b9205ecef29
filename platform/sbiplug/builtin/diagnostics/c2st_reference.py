"""Classifier two-sample test (C2ST) against the simulator's reference posterior.

Lopez-Paz and Oquab (2017), "Revisiting classifier two-sample tests", ICLR, arXiv:1610.06545;
used as the accuracy metric of the SBI benchmark by Lueckmann, Boelts, Greenberg, Goncalves
and Macke (2021), "Benchmarking simulation-based inference", AISTATS, arXiv:2101.04653.

For each observation, a classifier (sbi's :func:`sbi.utils.metrics.c2st`: a random forest,
5-fold cross-validated) tries to tell posterior draws from exact reference draws. Accuracy 0.5
means indistinguishable, 1.0 means disjoint.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

from sbiplug.diagnostic import Diagnostic, DiagnosticContext, DiagnosticResult
from sbiplug.toolkit import (
    DiagnosticInputError,
    derive_seed,
    figure_and_axes,
    parameter_names,
    require_observations,
    require_variables,
    resolve_progress,
    resolve_seed,
    seeded,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from torch import Tensor

__all__ = ["C2STReference"]


class C2STReference(Diagnostic):
    """C2ST accuracy between posterior and reference draws, per observation.

    ``statistic`` is the mean accuracy over observations; ``passed`` when it is below
    ``threshold``.

    Arguments:
        num_samples: Draws from each of the two distributions per observation.
        threshold: Largest acceptable mean accuracy.
        classifier: ``"rf"`` (random forest) or ``"mlp"``, as in :func:`sbi.utils.metrics.c2st`.
        seed: Seed for draws and classifier; defaults to the context's seed.
        show_progress_bars: Show progress bars; defaults to the context's setting.
    """

    name = "c2st_reference"

    def __init__(
        self,
        num_samples: int = 1000,
        threshold: float = 0.6,
        classifier: str = "rf",
        seed: int | None = None,
        show_progress_bars: bool | None = None,
    ) -> None:
        if num_samples < 10:
            raise ValueError(f"c2st_reference: num_samples must be >= 10, got {num_samples}")
        if not 0.5 <= threshold <= 1.0:
            raise ValueError(f"c2st_reference: threshold must lie in [0.5, 1], got {threshold}")
        if classifier not in ("rf", "mlp"):
            raise ValueError(
                f"c2st_reference: classifier must be 'rf' or 'mlp', got {classifier!r}"
            )
        self.num_samples = num_samples
        self.threshold = threshold
        self.classifier = classifier
        self.seed = seed
        self.show_progress_bars = show_progress_bars

    def run(self, context: DiagnosticContext) -> DiagnosticResult:
        """Compare posterior and reference draws for every observation.

        Returns:
            A result whose data holds ``c2st`` along ``observation`` and the two sample sets'
            means and standard deviations along ``(observation, parameter)``.
        """
        import numpy as np
        import xarray as xr
        from sbi.utils.metrics import c2st

        observations = require_observations(context, self.name)
        simulator = context.simulator
        if simulator is None or not simulator.has_reference_posterior:
            which = "no simulator" if simulator is None else f"simulator {simulator.name!r}"
            raise DiagnosticInputError(
                f"diagnostic 'c2st_reference' needs a simulator with a reference posterior; "
                f"the context has {which} without one"
            )
        stored = context.posterior_samples
        if stored is None and context.posterior is None:
            raise DiagnosticInputError(
                "diagnostic 'c2st_reference' needs a posterior or posterior_samples"
            )
        if stored is not None and (stored.ndim != 3 or len(stored) != len(observations)):
            raise DiagnosticInputError(
                "diagnostic 'c2st_reference': posterior_samples must have shape "
                f"(num_observations={len(observations)}, num_samples, num_parameters), got "
                f"{tuple(stored.shape)}"
            )
        seed = resolve_seed(self.seed, context)
        progress = resolve_progress(self.show_progress_bars, context)

        accuracies, moments = [], []
        for index, x_o in enumerate(observations):
            with seeded(derive_seed(seed, f"posterior {index}")):
                draws = self._posterior_draws(context, stored, index, x_o, progress)
            reference = simulator.reference_posterior(
                x_o, len(draws), seed=derive_seed(seed, f"reference {index}")
            ).float()
            accuracy = c2st(draws, reference, seed=seed, classifier=self.classifier)
            accuracies.append(float(accuracy))
            moments.append(
                [t.mean(0).numpy() for t in (draws, reference)]
                + [t.std(0).numpy() for t in (draws, reference)]
            )

        num_parameters = moments[0][0].shape[0]
        names = parameter_names(context, num_parameters)
        dims = ("observation", "parameter")
        stacked = [np.stack([m[k] for m in moments]).astype(np.float64) for k in range(4)]
        data = xr.Dataset(
            {
                "c2st": ("observation", np.asarray(accuracies, dtype=np.float64)),
                "posterior_mean": (dims, stacked[0]),
                "reference_mean": (dims, stacked[1]),
                "posterior_std": (dims, stacked[2]),
                "reference_std": (dims, stacked[3]),
            },
            coords={"observation": np.arange(len(accuracies)), "parameter": names},
            attrs={"num_samples": self.num_samples, "threshold": self.threshold, "seed": seed},
        )
        mean_accuracy = float(np.mean(accuracies))
        passed = mean_accuracy < self.threshold
        message = (
            f"C2ST against the reference posterior over {len(accuracies)} observation(s): mean "
            f"accuracy {mean_accuracy:.3f} ({'below' if passed else 'NOT below'} "
            f"{self.threshold}; 0.5 is perfect)"
        )
        return DiagnosticResult(
            name=self.name,
            statistic=mean_accuracy,
            passed=passed,
            threshold=self.threshold,
            summary={"c2st_max": float(np.max(accuracies)), "c2st_min": float(np.min(accuracies))},
            data=data,
            message=message,
        )

    def _posterior_draws(
        self,
        context: DiagnosticContext,
        stored: Tensor | None,
        index: int,
        x_o: Tensor,
        progress: bool,
    ) -> Tensor:
        """The context's stored draws for observation ``index``, else fresh ones."""
        if stored is not None:
            return stored[index, : self.num_samples].float()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*unnormalized.*")
            return context.posterior.sample(
                (self.num_samples,), x=x_o, show_progress_bars=progress
            ).float()

    def plot(self, result: DiagnosticResult, ax: Axes | None = None) -> Figure:
        """C2ST accuracy per observation, with chance level and threshold."""
        require_variables(result.data, ("c2st",), "c2st_reference")
        figure, ax = figure_and_axes(ax)
        accuracy = result.data["c2st"].values
        ax.bar(range(len(accuracy)), accuracy, color="C0")
        ax.axhline(0.5, color="0.4", linestyle="--", linewidth=0.8, label="chance (0.5)")
        threshold = result.threshold or result.data.attrs.get("threshold")
        if threshold is not None:
            ax.axhline(float(threshold), color="C3", linewidth=0.8, label="threshold")
        ax.set_ylim(0.4, 1.0)
        ax.set_xticks(range(len(accuracy)))
        ax.set_xlabel("observation")
        ax.set_ylabel("C2ST accuracy")
        ax.set_title("C2ST against reference posterior")
        ax.legend(fontsize="small")
        return figure
