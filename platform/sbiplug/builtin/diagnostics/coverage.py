"""Expected coverage of highest-posterior-density (HPD) regions.

Hermans, Delaunoy, Rozet, Wehenkel, Begy and Louppe (2022), "A trust crisis in simulation-based
inference? Your posterior approximations can be unfaithful", TMLR, arXiv:2110.06581; the
sample-based estimator of Deistler, Goncalves and Macke (2022), arXiv:2210.04815.

For each pair ``(theta_i, x_i)``, the smallest HPD region that contains ``theta_i`` has
credibility ``c_i``: the fraction of posterior draws whose log-probability is at least
``log q(theta_i | x_i)``. For an exact posterior ``c_i ~ Uniform(0, 1)``, so the expected
coverage ``P(c_i <= c)`` equals the nominal level ``c``. Ranks come from
:func:`sbi.diagnostics.run_sbc` with the posterior's ``log_prob`` as reduce function; the
normalising constant is irrelevant (it is shared by all draws of one ``x_i``), so
likelihood- and ratio-based posteriors qualify too.
"""

from __future__ import annotations

import inspect
import warnings
from typing import TYPE_CHECKING, Any

from sbiplug.builtin.diagnostics._common import dkw_epsilon, sbi_budget_warnings_silenced
from sbiplug.diagnostic import Diagnostic, DiagnosticContext, DiagnosticResult
from sbiplug.toolkit import (
    DiagnosticInputError,
    calibration_pairs,
    derive_seed,
    figure_and_axes,
    require_posterior,
    require_variables,
    resolve_progress,
    resolve_seed,
    seeded,
    significance,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from torch import Tensor

__all__ = ["Coverage"]


class Coverage(Diagnostic):
    """Expected coverage of HPD regions, from the posterior's log-probabilities.

    ``statistic`` is the KS distance between the HPD levels and ``Uniform(0, 1)``, ``p_value``
    its KS p-value; ``passed`` when ``p_value > alpha`` (the ``threshold``). ``summary["atc"]``
    is the signed area between coverage and diagonal above level 0.5 (negative: over-confident).

    Arguments:
        num_coverage_runs: Number of ``(theta, x)`` pairs.
        num_posterior_samples: Posterior draws per pair.
        alpha: Significance level of the uniformity test.
        seed: Seed for pairs and draws; defaults to the context's seed.
        show_progress_bars: Show progress bars; defaults to the context's setting.
    """

    name = "coverage"

    def __init__(
        self,
        num_coverage_runs: int = 200,
        num_posterior_samples: int = 200,
        alpha: float = 0.05,
        seed: int | None = None,
        show_progress_bars: bool | None = None,
    ) -> None:
        if num_coverage_runs < 2 or num_posterior_samples < 1:
            raise ValueError(
                "coverage: num_coverage_runs must be >= 2 and num_posterior_samples >= 1, "
                f"got {num_coverage_runs} and {num_posterior_samples}"
            )
        self.num_coverage_runs = num_coverage_runs
        self.num_posterior_samples = num_posterior_samples
        self.alpha = alpha
        self.seed = seed
        self.show_progress_bars = show_progress_bars

    def run(self, context: DiagnosticContext) -> DiagnosticResult:
        """Compute each pair's HPD level and the expected coverage curve.

        Returns:
            A result whose data holds ``hpd_level`` along ``coverage_run`` and ``ecp`` /
            ``credibility`` along ``credibility_level``.
        """
        import numpy as np
        import xarray as xr
        from sbi.diagnostics import run_sbc
        from scipy.stats import kstest

        posterior = require_posterior(context, self.name)
        seed = resolve_seed(self.seed, context)
        progress = resolve_progress(self.show_progress_bars, context)
        theta, x, source = calibration_pairs(context, self.num_coverage_runs, seed, self.name)
        log_prob = _log_prob_function(posterior)
        _probe(log_prob, theta[:1], x[0], posterior)

        samples = self.num_posterior_samples
        with seeded(derive_seed(seed, "posterior")), sbi_budget_warnings_silenced():
            ranks, _ = run_sbc(
                theta,
                x,
                posterior,
                num_posterior_samples=samples,
                reduce_fns=log_prob,
                show_progress_bar=progress,
            )
        # rank = #draws with lower log-probability than theta_i; the HPD region at theta_i's
        # density holds the remaining draws.
        hpd_level = 1.0 - ranks[:, 0].numpy().astype(np.float64) / samples
        credibility = np.linspace(0.0, 1.0, 101)
        ecp = np.searchsorted(np.sort(hpd_level), credibility, side="right") / len(hpd_level)
        test = kstest(hpd_level, "uniform")
        upper = credibility >= 0.5
        atc = float(np.trapezoid(ecp[upper] - credibility[upper], credibility[upper]))

        data = xr.Dataset(
            {
                "hpd_level": ("coverage_run", hpd_level),
                "ecp": ("credibility_level", ecp.astype(np.float64)),
                "credibility": ("credibility_level", credibility),
            },
            coords={
                "coverage_run": np.arange(len(hpd_level)),
                "credibility_level": np.arange(len(credibility)),
            },
            attrs={
                "num_posterior_samples": samples,
                "alpha": self.alpha,
                "source": source,
                "seed": seed,
            },
        )
        verdict = significance(test.pvalue, self.alpha)
        message = (
            f"HPD coverage over {len(hpd_level)} {source} pairs: "
            f"{'calibrated' if verdict['passed'] else 'NOT calibrated'} "
            f"(KS p-value {test.pvalue:.3g}, ATC {atc:+.3f})"
        )
        return DiagnosticResult(
            name=self.name,
            statistic=float(test.statistic),
            **verdict,
            summary={
                "atc": atc,
                "coverage_at_0.5": float(np.mean(hpd_level <= 0.5)),
                "coverage_at_0.9": float(np.mean(hpd_level <= 0.9)),
                "num_coverage_runs": float(len(hpd_level)),
            },
            data=data,
            message=message,
        )

    def plot(self, result: DiagnosticResult, ax: Axes | None = None) -> Figure:
        """Expected coverage against credibility level, with a DKW ``1 - alpha`` band."""
        require_variables(result.data, ("ecp", "credibility", "hpd_level"), "coverage")
        data = result.data
        figure, ax = figure_and_axes(ax)
        credibility = data["credibility"].values
        alpha = float(data.attrs.get("alpha", 0.05))
        epsilon = dkw_epsilon(data.sizes["coverage_run"], alpha)
        ax.fill_between(
            credibility,
            (credibility - epsilon).clip(0, 1),
            (credibility + epsilon).clip(0, 1),
            color="0.85",
            label=f"{1 - alpha:.0%} band",
        )
        ax.plot(credibility, credibility, color="0.4", linestyle="--", linewidth=0.8)
        ax.plot(credibility, data["ecp"].values, label="HPD coverage")
        ax.set_xlim(0.0, 1.0)
        ax.set_ylim(0.0, 1.0)
        ax.set_xlabel("credibility level")
        ax.set_ylabel("expected coverage")
        ax.set_title("Expected coverage")
        ax.legend(fontsize="small")
        return figure


def _log_prob_function(posterior: Any) -> Callable[[Tensor, Tensor], Tensor]:
    """``(theta, x) -> log q(theta | x)`` up to a constant in theta, skipping normalisation."""
    log_prob = getattr(posterior, "log_prob", None)
    if not callable(log_prob):
        raise DiagnosticInputError(
            f"diagnostic 'coverage' needs a posterior with log_prob; "
            f"{type(posterior).__name__} has none"
        )
    try:
        accepted = inspect.signature(log_prob).parameters
    except (TypeError, ValueError):
        accepted = {}
    # Leakage correction rescales every draw of one x alike: it cannot change ranks, and
    # it costs a rejection-sampling run per x.
    options = {"norm_posterior": False} if "norm_posterior" in accepted else {}

    def reduce(theta: Tensor, x: Tensor) -> Tensor:
        return log_prob(theta, x=x, **options)

    return reduce


def _probe(
    log_prob: Callable[[Tensor, Tensor], Tensor], theta: Tensor, x: Tensor, posterior: Any
) -> None:
    """Fail before sampling when the posterior cannot evaluate densities."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            log_prob(theta, x)
    except (NotImplementedError, AttributeError) as error:
        raise DiagnosticInputError(
            f"diagnostic 'coverage' needs a posterior with log_prob; "
            f"{type(posterior).__name__}.log_prob failed: {error}"
        ) from error
