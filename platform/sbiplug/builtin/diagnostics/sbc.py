"""Simulation-based calibration (SBC).

Talts, Betancourt, Simpson, Vehtari and Gelman (2018), "Validating Bayesian inference
algorithms with simulation-based calibration", arXiv:1804.06788.

For pairs ``theta_i ~ p(theta)``, ``x_i ~ p(x | theta_i)``, the rank of each parameter of
``theta_i`` among ``N`` posterior draws given ``x_i`` is uniform on ``{0, ..., N}`` when the
posterior is exact. Ranks come from :func:`sbi.diagnostics.run_sbc`; uniformity is checked per
parameter by a Kolmogorov-Smirnov test and by a C2ST between ranks and uniform draws
(:func:`sbi.diagnostics.check_sbc`), both on randomised ranks ``rank + U(0, 1)`` so that ties
do not bias them. The ranks are also stored as probability integral transform values
``rank / N`` (ArviZ's ``prior_sbc`` group).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sbiplug.builtin.diagnostics._common import dkw_epsilon, sbi_budget_warnings_silenced
from sbiplug.diagnostic import Diagnostic, DiagnosticContext, DiagnosticResult
from sbiplug.toolkit import (
    DiagnosticInputError,
    calibration_pairs,
    derive_seed,
    figure_and_axes,
    parameter_names,
    require_posterior,
    require_variables,
    resolve_progress,
    resolve_seed,
    seeded,
    significance,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["SBC"]


class SBC(Diagnostic):
    """Simulation-based calibration of the posterior's marginals.

    ``passed`` is true when every parameter's KS p-value exceeds ``alpha / num_parameters``
    (Bonferroni correction over parameters); ``p_value`` is the Bonferroni-adjusted smallest
    KS p-value, ``threshold`` is ``alpha`` and ``statistic`` the largest KS distance.

    Arguments:
        num_sbc_runs: Number of ``(theta, x)`` pairs.
        num_posterior_samples: Posterior draws ranked against each ``theta``.
        alpha: Family-wise significance level of the uniformity test.
        c2st: Also run the C2ST checks of :func:`sbi.diagnostics.check_sbc` (ranks against
            uniform draws, data-averaged posterior against the prior).
        seed: Seed for the pairs, the posterior draws and the classifiers; defaults to the
            context's seed.
        show_progress_bars: Show progress bars; defaults to the context's setting.
    """

    name = "sbc"

    def __init__(
        self,
        num_sbc_runs: int = 200,
        num_posterior_samples: int = 200,
        alpha: float = 0.05,
        c2st: bool = True,
        seed: int | None = None,
        show_progress_bars: bool | None = None,
    ) -> None:
        if num_sbc_runs < 2 or num_posterior_samples < 1:
            raise ValueError(
                "sbc: num_sbc_runs must be >= 2 and num_posterior_samples >= 1, got "
                f"{num_sbc_runs} and {num_posterior_samples}"
            )
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"sbc: alpha must lie in (0, 1), got {alpha}")
        self.num_sbc_runs = num_sbc_runs
        self.num_posterior_samples = num_posterior_samples
        self.alpha = alpha
        self.c2st = c2st
        self.seed = seed
        self.show_progress_bars = show_progress_bars

    def run(self, context: DiagnosticContext) -> DiagnosticResult:
        """Rank true parameters among posterior draws and test the ranks for uniformity.

        Returns:
            A result whose data holds ``theta``, ``ranks``, ``pit`` and ``dap`` with dims
            ``(sbc_run, parameter)`` and ``ks_p_value``, ``ks_statistic``, ``c2st_ranks``,
            ``c2st_dap`` with dim ``parameter``.
        """
        import numpy as np
        import torch
        import xarray as xr
        from sbi.diagnostics import check_sbc, run_sbc
        from sbi.diagnostics.sbc import check_uniformity_frequentist
        from scipy.stats import kstest

        posterior = require_posterior(context, self.name)
        seed = resolve_seed(self.seed, context)
        progress = resolve_progress(self.show_progress_bars, context)
        theta, x, source = calibration_pairs(context, self.num_sbc_runs, seed, self.name)
        if len(theta) < 2:
            raise DiagnosticInputError(f"diagnostic 'sbc' needs >= 2 pairs, got {len(theta)}")
        num_parameters = theta.shape[1]
        samples = self.num_posterior_samples

        with seeded(derive_seed(seed, "posterior")), sbi_budget_warnings_silenced():
            ranks, dap = run_sbc(
                theta,
                x,
                posterior,
                num_posterior_samples=samples,
                show_progress_bar=progress,
            )
            # Randomised ranks, rank + U(0, 1), are exactly Uniform(0, N + 1) for an exact
            # posterior. Raw integer ranks are not continuous: a random forest tells them from
            # uniform draws by their ties alone (C2ST ~0.7 for N = 100), and KS is conservative.
            jittered = ranks + torch.rand(ranks.shape)
            if self.c2st:
                checks = check_sbc(jittered, theta, dap, samples + 1)
                ks_p_values = checks["ks_pvals"].numpy()
                c2st_ranks = checks["c2st_ranks"].numpy()
                c2st_dap = checks["c2st_dap"].numpy()
            else:
                ks_p_values = check_uniformity_frequentist(jittered, samples + 1).numpy()
                c2st_ranks = c2st_dap = np.full(num_parameters, np.nan)
        ks_statistics = np.array(
            [kstest(r.numpy(), "uniform", args=(0, samples + 1)).statistic for r in jittered.T]
        )

        names = parameter_names(context, num_parameters)
        dims = ("sbc_run", "parameter")
        data = xr.Dataset(
            {
                "theta": (dims, theta.numpy().astype(np.float64)),
                "ranks": (dims, ranks.numpy().astype(np.int64)),
                "pit": (dims, ranks.numpy().astype(np.float64) / samples),
                "dap": (dims, dap.numpy().astype(np.float64)),
                "ks_p_value": ("parameter", ks_p_values.astype(np.float64)),
                "ks_statistic": ("parameter", ks_statistics.astype(np.float64)),
                "c2st_ranks": ("parameter", c2st_ranks.astype(np.float64)),
                "c2st_dap": ("parameter", c2st_dap.astype(np.float64)),
            },
            coords={"sbc_run": np.arange(len(ranks)), "parameter": names},
            attrs={
                "num_posterior_samples": samples,
                "alpha": self.alpha,
                "source": source,
                "seed": seed,
            },
        )

        verdict = significance(ks_p_values, self.alpha)
        worst = names[int(np.argmin(ks_p_values))]
        summary = {
            "ks_p_value_min": float(ks_p_values.min()),
            "num_sbc_runs": float(len(ranks)),
            "num_posterior_samples": float(samples),
        }
        if self.c2st:
            summary["c2st_ranks_max"] = float(c2st_ranks.max())
            summary["c2st_dap_max"] = float(c2st_dap.max())
        message = (
            f"SBC over {len(ranks)} {source} pairs: ranks "
            f"{'uniform' if verdict['passed'] else 'NOT uniform'} (smallest KS p-value "
            f"{ks_p_values.min():.3g} for {worst!r}; Bonferroni threshold "
            f"{self.alpha / num_parameters:.3g})"
        )
        return DiagnosticResult(
            name=self.name,
            statistic=float(ks_statistics.max()),
            summary=summary,
            data=data,
            message=message,
            **verdict,
        )

    def plot(self, result: DiagnosticResult, ax: Axes | None = None) -> Figure:
        """ECDF of the PIT values minus the uniform CDF, with a simultaneous band.

        The grey band is the Dvoretzky-Kiefer-Wolfowitz ``1 - alpha / num_parameters``
        band: a calibrated posterior keeps every curve inside it with probability
        ``>= 1 - alpha`` (conservative).
        """
        import numpy as np

        require_variables(result.data, ("pit",), "sbc")
        data = result.data
        figure, ax = figure_and_axes(ax)
        pit = data["pit"].transpose("sbc_run", "parameter").values
        num_runs, num_parameters = pit.shape
        alpha = float(data.attrs.get("alpha", 0.05))
        grid = np.linspace(0.0, 1.0, 201)
        epsilon = dkw_epsilon(num_runs, alpha / num_parameters)
        ax.fill_between(grid, -epsilon, epsilon, color="0.85", label=f"{1 - alpha:.0%} band")
        for index, name in enumerate(data["parameter"].values):
            ecdf = np.searchsorted(np.sort(pit[:, index]), grid, side="right") / num_runs
            ax.plot(grid, ecdf - grid, label=str(name))
        ax.axhline(0.0, color="0.4", linewidth=0.8)
        ax.set_xlim(0.0, 1.0)
        ax.set_xlabel("PIT value (rank / posterior draws)")
        ax.set_ylabel("ECDF - uniform CDF")
        ax.set_title("SBC")
        ax.legend(fontsize="small", ncol=2 if num_parameters > 4 else 1)
        return figure
