"""Diagnostics: checks run on a trained estimator, its posterior and the observations.

A :class:`Diagnostic` turns a :class:`DiagnosticContext` into a :class:`DiagnosticResult`: scalar
summaries (statistic, p-value, pass/fail against a threshold), the arrays behind them as an
``xarray.Dataset``, and a figure. Results round-trip through netCDF: the figure is redrawn from
the dataset by the diagnostic registered under the result's name.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sbiplug.plugins import get_plugin_manager
from sbiplug.toolkit.names import default_parameter_names

if TYPE_CHECKING:
    import xarray as xr
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from torch import Tensor

    from sbiplug.simulator import Simulator

__all__ = ["Diagnostic", "DiagnosticContext", "DiagnosticResult"]


@dataclass
class DiagnosticContext:
    """Everything a diagnostic may use.

    Arguments:
        simulator: The study's simulator (prior, forward model, reference posterior).
        estimator: The trained sbi trainer.
        posterior: The sbi posterior built from it.
        theta: Training parameters, shape ``(num_simulations, num_parameters)``.
        x: Training data, shape ``(num_simulations, *observation_shape)``.
        observations: Observed data sets, shape ``(num_observations, *observation_shape)``.
        true_parameters: Parameters behind the observations, if known,
            shape ``(num_observations, num_parameters)``.
        posterior_samples: Draws for each observation,
            shape ``(num_observations, num_samples, num_parameters)``.
        seed: Seed for the diagnostic's own randomness.
        show_progress_bars: Whether long work shows a progress bar.
    """

    simulator: Simulator | None = None
    estimator: Any = None
    posterior: Any = None
    theta: Tensor | None = None
    x: Tensor | None = None
    observations: Tensor | None = None
    true_parameters: Tensor | None = None
    posterior_samples: Tensor | None = None
    seed: int | None = None
    show_progress_bars: bool = False
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def parameter_names(self) -> list[str]:
        if self.simulator is not None and self.simulator.parameter_names:
            return list(self.simulator.parameter_names)
        if self.theta is not None:
            return default_parameter_names(self.theta.shape[-1])
        return []


_SCALAR_FIELDS = ("statistic", "p_value", "threshold")


@dataclass
class DiagnosticResult:
    """The outcome of one diagnostic.

    Arguments:
        name: The diagnostic's registered name (used to redraw the figure after loading).
        statistic: The headline number.
        p_value: A p-value where the check is a test.
        passed: Whether the check passed against ``threshold``.
        threshold: The bound ``passed`` was decided with.
        summary: Further scalar summaries.
        data: The arrays behind the numbers.
        message: One human-readable line.
    """

    name: str
    statistic: float | None = None
    p_value: float | None = None
    passed: bool | None = None
    threshold: float | None = None
    summary: dict[str, float] = field(default_factory=dict)
    data: xr.Dataset | None = None
    message: str = ""

    def plot(self, ax: Axes | None = None) -> Figure:
        """Draw this result (into ``ax`` when given) and return the figure."""
        # The plugin manager, not the registry: the registry builds diagnostics, so it sits
        # above this contract. Redrawing needs no options, only the diagnostic's default build.
        diagnostic = get_plugin_manager().get("diagnostics", self.name).load()()
        return diagnostic.plot(self, ax=ax)

    def scalars(self) -> dict[str, float]:
        """Headline numbers and summaries as one flat mapping of floats."""
        values = {key: getattr(self, key) for key in _SCALAR_FIELDS}
        values.update(self.summary)
        if self.passed is not None:
            values["passed"] = float(self.passed)
        return {k: float(v) for k, v in values.items() if v is not None}

    def to_dataset(self) -> xr.Dataset:
        """The result as one dataset; scalars and the message go into attrs (netCDF-safe)."""
        import xarray as xr

        dataset = self.data.copy() if self.data is not None else xr.Dataset()
        dataset.attrs.update(
            {
                "diagnostic": self.name,
                "message": self.message,
                "scalars": json.dumps(
                    {
                        "statistic": self.statistic,
                        "p_value": self.p_value,
                        "passed": self.passed,
                        "threshold": self.threshold,
                        "summary": self.summary,
                    }
                ),
            }
        )
        return dataset

    @classmethod
    def from_dataset(cls, dataset: xr.Dataset) -> DiagnosticResult:
        """Inverse of :meth:`to_dataset`."""
        attrs = dict(dataset.attrs)
        scalars = json.loads(attrs.pop("scalars", "{}"))
        name = attrs.pop("diagnostic")
        message = attrs.pop("message", "")
        data = dataset.copy()
        data.attrs = attrs
        return cls(
            name=name,
            statistic=_finite_or_none(scalars.get("statistic")),
            p_value=_finite_or_none(scalars.get("p_value")),
            passed=scalars.get("passed"),
            threshold=_finite_or_none(scalars.get("threshold")),
            summary=dict(scalars.get("summary") or {}),
            data=data,
            message=message,
        )

    def __repr__(self) -> str:
        parts = [f"name={self.name!r}"]
        for key in ("statistic", "p_value", "passed", "threshold"):
            value = getattr(self, key)
            if value is not None:
                parts.append(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}")
        return f"DiagnosticResult({', '.join(parts)})"


def _finite_or_none(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) or math.isinf(value) else None


class Diagnostic(ABC):
    """A check of a trained posterior. Subclasses set ``name`` and implement both methods."""

    name: str = "diagnostic"

    @abstractmethod
    def run(self, context: DiagnosticContext) -> DiagnosticResult:
        """Run the check."""

    @abstractmethod
    def plot(self, result: DiagnosticResult, ax: Axes | None = None) -> Figure:
        """Draw ``result`` from its data alone (it may come from a file), return the figure."""
