"""Diagnostic ``misspecification``: the summary-space MMD test on a study's observations.

Schmitt, Bürkner, Köthe & Radev, *Detecting Model Misspecification in Amortized Bayesian
Inference with Neural Networks* (GCPR 2023, arXiv 2112.08866). Runs
:func:`~sbiplug_misspec.misspecification_test` with the study's trained embedding net, its
simulator and all its observations (tested jointly as N data sets), and warns when the model is
rejected: the posterior should then not be trusted on these data.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from sbiplug import Diagnostic, DiagnosticContext, DiagnosticResult
from sbiplug.toolkit import (
    DiagnosticInputError,
    figure_and_axes,
    require_observations,
    require_simulator,
    significance,
)
from sbiplug_misspec.hypothesis_test import misspecification_test
from sbiplug_misspec.regularizer import KernelName

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["MisspecificationDiagnostic", "MisspecificationWarning"]


class MisspecificationWarning(UserWarning):
    """The observations are unlikely under the simulator: do not trust the posterior."""


class MisspecificationDiagnostic(Diagnostic):
    """Root-MMD test of the observations against the model, in the learned summary space.

    Arguments:
        num_reference: Reference data sets simulated from the model.
        num_null: Null replicates (each of N fresh data sets).
        alpha: The test's level.
        kernel: ``"imq"`` or ``"gaussian"`` 19-scale mixture.
        data_features: ``"auto"`` (default: the summary block and blocks of fixed data
            features, see :func:`~sbiplug_misspec.misspecification_test`) or ``None`` (the
            paper's summary-space test alone).
    """

    name = "misspecification"

    def __init__(
        self,
        num_reference: int = 1000,
        num_null: int = 500,
        alpha: float = 0.05,
        kernel: KernelName = "imq",
        data_features: str | None = "auto",
    ) -> None:
        if data_features not in ("auto", None):
            raise ValueError(
                f"diagnostic 'misspecification': data_features must be 'auto' or None, got "
                f"{data_features!r}"
            )
        self.num_reference = num_reference
        self.num_null = num_null
        self.alpha = alpha
        self.kernel: KernelName = kernel
        self.data_features = data_features

    def run(self, context: DiagnosticContext) -> DiagnosticResult:
        """Test ``context.observations`` with the estimator's (or posterior's) embedding net."""
        simulator = require_simulator(context, self.name)
        observations = require_observations(context, self.name)
        summary = context.estimator if context.estimator is not None else context.posterior
        if summary is None:
            raise DiagnosticInputError(
                f"diagnostic {self.name!r} needs an estimator or a posterior with an embedding net"
            )
        test = misspecification_test(
            summary,
            simulator,
            observations,
            num_reference=self.num_reference,
            num_null=self.num_null,
            alpha=self.alpha,
            kernel=self.kernel,
            seed=context.seed,
            data_features=self.data_features,
        )
        message = (
            f"{test.message} [statistic {test.statistic:.4g}, critical value "
            f"{test.critical_value:.4g}; {self.num_null} simulated null replicates, "
            f"{self.num_reference} reference sets, {self.kernel} kernel, 19 scales]"
        )
        if test.rejected:
            warnings.warn(
                f"misspecification: {test.message}; the posterior should not be trusted on them",
                MisspecificationWarning,
                stacklevel=2,
            )
        data = xr.Dataset(
            {"null_statistic": ("null_replicate", test.null_statistics.double().numpy())},
            attrs={
                "observed_statistic": test.statistic,
                "critical_value": test.critical_value,
                "alpha": test.alpha,
                "num_observed": test.num_observed,
                "num_reference": self.num_reference,
                "num_null": self.num_null,
                "kernel": self.kernel,
                "scales": np.asarray(test.attrs["scales"]),
                "blocks": ",".join(test.attrs["blocks"]),
                "block_p_values": np.asarray(test.attrs["block_p_values"]),
            },
        )
        return DiagnosticResult(
            name=self.name,
            statistic=test.statistic,
            **significance(test.p_value, test.alpha),
            summary={
                "critical_value": test.critical_value,
                "num_observed": float(test.num_observed),
                "num_reference": float(self.num_reference),
                "num_null": float(self.num_null),
                **{f"p_value_{b.name}": b.p_value for b in test.blocks},
            },
            data=data,
            message=message,
        )

    def plot(self, result: DiagnosticResult, ax: Axes | None = None) -> Figure:
        """Histogram of the null with the observed statistic and the critical value."""
        figure, ax = figure_and_axes(ax, figsize=(5, 3.5))
        data = result.data
        null = np.asarray(data["null_statistic"].values)
        observed = float(result.statistic)
        critical = float(result.summary.get("critical_value", data.attrs["critical_value"]))
        ax.hist(null, bins=30, color="0.7", edgecolor="0.4", label="null (simulated)")
        ax.axvline(critical, color="k", linestyle="--", label=f"critical value ({critical:.3g})")
        color = "tab:red" if result.passed is False else "tab:blue"
        ax.axvline(observed, color=color, linewidth=2, label=f"observed ({observed:.3g})")
        ax.set_xlabel("test statistic (root MMD, or -log smallest block p)")
        ax.set_ylabel("null replicates")
        ax.set_title(f"misspecification: p = {result.p_value:.3g}")
        ax.legend(frameon=False, fontsize="small")
        return figure
