"""Tests of accuracy with random points (TARP).

Lemos, Coogan, Hezaveh and Perreault-Levasseur (2023), "Sampling-based accuracy testing of
posterior estimators for general inference", ICML, arXiv:2302.03026.

For each pair ``(theta_i, x_i)`` and a random reference point, TARP records the fraction of
posterior draws closer to the reference than ``theta_i``. Its empirical CDF, the expected
coverage probability (ECP) at each credibility level, lies on the diagonal for an exact
posterior. Computed with :func:`sbi.diagnostics.run_tarp` and judged with
:func:`sbi.diagnostics.check_tarp`: the area between ECP and diagonal above credibility 0.5
(ATC; negative: over-confident, positive: under-confident) and a KS p-value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sbiplug.builtin.diagnostics._common import sbi_budget_warnings_silenced
from sbiplug.diagnostic import Diagnostic, DiagnosticContext, DiagnosticResult
from sbiplug.toolkit import (
    calibration_pairs,
    derive_seed,
    figure_and_axes,
    require_posterior,
    require_variables,
    resolve_progress,
    resolve_seed,
    seeded,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["TARP"]


class TARP(Diagnostic):
    """Expected coverage of random-point balls (TARP).

    ``statistic`` is the ATC and ``p_value`` the KS p-value of :func:`sbi.diagnostics.check_tarp`.
    ``passed`` is true when ``|ATC| <= atc_threshold`` and the KS p-value exceeds ``alpha``.

    Arguments:
        num_tarp_runs: Number of ``(theta, x)`` pairs.
        num_posterior_samples: Posterior draws per pair.
        num_bins: Credibility bins; ``None`` uses ``num_tarp_runs // 10``.
        atc_threshold: Largest acceptable ``|ATC|``.
        alpha: Significance level of the KS test.
        seed: Seed for pairs, reference points and draws; defaults to the context's seed.
        show_progress_bars: Show progress bars; defaults to the context's setting.
    """

    name = "tarp"

    def __init__(
        self,
        num_tarp_runs: int = 200,
        num_posterior_samples: int = 200,
        num_bins: int | None = None,
        atc_threshold: float = 0.05,
        alpha: float = 0.05,
        seed: int | None = None,
        show_progress_bars: bool | None = None,
    ) -> None:
        if num_tarp_runs < 10 or num_posterior_samples < 1:
            raise ValueError(
                "tarp: num_tarp_runs must be >= 10 and num_posterior_samples >= 1, got "
                f"{num_tarp_runs} and {num_posterior_samples}"
            )
        if num_bins is not None and num_bins < 2:
            raise ValueError(f"tarp: num_bins must be >= 2, got {num_bins}")
        self.num_tarp_runs = num_tarp_runs
        self.num_posterior_samples = num_posterior_samples
        self.num_bins = num_bins
        self.atc_threshold = atc_threshold
        self.alpha = alpha
        self.seed = seed
        self.show_progress_bars = show_progress_bars

    def run(self, context: DiagnosticContext) -> DiagnosticResult:
        """Compute the TARP expected coverage curve.

        Returns:
            A result whose data holds ``ecp`` and the diagonal ``credibility`` along dim
            ``credibility_level``.
        """
        import numpy as np
        import xarray as xr
        from sbi.diagnostics import check_tarp, run_tarp

        posterior = require_posterior(context, self.name)
        seed = resolve_seed(self.seed, context)
        progress = resolve_progress(self.show_progress_bars, context)
        theta, x, source = calibration_pairs(context, self.num_tarp_runs, seed, self.name)
        num_bins = self.num_bins or max(2, len(theta) // 10)
        with seeded(derive_seed(seed, "posterior")), sbi_budget_warnings_silenced():
            ecp, credibility = run_tarp(
                theta,
                x,
                posterior,
                num_posterior_samples=self.num_posterior_samples,
                show_progress_bar=progress,
                num_bins=num_bins,
            )
        atc, ks_p_value = check_tarp(ecp, credibility)
        atc, ks_p_value = float(atc), float(ks_p_value)

        data = xr.Dataset(
            {
                "ecp": ("credibility_level", ecp.numpy().astype(np.float64)),
                "credibility": ("credibility_level", credibility.numpy().astype(np.float64)),
            },
            coords={"credibility_level": np.arange(len(ecp))},
            attrs={
                "num_tarp_runs": len(theta),
                "num_posterior_samples": self.num_posterior_samples,
                "source": source,
                "seed": seed,
            },
        )
        passed = abs(atc) <= self.atc_threshold and ks_p_value > self.alpha
        if atc < -self.atc_threshold:
            shape = "over-confident (too narrow)"
        elif atc > self.atc_threshold:
            shape = "under-confident (too wide)"
        else:
            shape = "close to the diagonal"
        message = (
            f"TARP over {len(theta)} {source} pairs: ATC {atc:+.3f} ({shape}), "
            f"KS p-value {ks_p_value:.3g}"
        )
        return DiagnosticResult(
            name=self.name,
            statistic=atc,
            p_value=ks_p_value,
            passed=passed,
            threshold=self.atc_threshold,
            summary={
                "atc": atc,
                "ks_p_value": ks_p_value,
                "max_abs_deviation": float((ecp - credibility).abs().max()),
                "num_tarp_runs": float(len(theta)),
            },
            data=data,
            message=message,
        )

    def plot(self, result: DiagnosticResult, ax: Axes | None = None) -> Figure:
        """Expected coverage probability against credibility level, with the diagonal."""
        require_variables(result.data, ("ecp", "credibility"), "tarp")
        figure, ax = figure_and_axes(ax)
        credibility = result.data["credibility"].values
        ax.plot([0, 1], [0, 1], color="0.4", linestyle="--", linewidth=0.8, label="ideal")
        ax.plot(credibility, result.data["ecp"].values, label="TARP")
        ax.set_xlim(0.0, 1.0)
        ax.set_ylim(0.0, 1.0)
        ax.set_xlabel("credibility level")
        ax.set_ylabel("expected coverage")
        ax.set_title("TARP")
        ax.legend(fontsize="small")
        return figure
