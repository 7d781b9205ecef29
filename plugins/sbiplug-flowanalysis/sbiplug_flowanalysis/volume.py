"""The ``volume_preservation`` diagnostic: can the posterior flow vary its volume change?

Draxler, Wahl, Schnörr, Köthe, *On the Universality of Volume-Preserving and Coupling-Based
Normalizing Flows*, ICML 2024 (arXiv 2402.06578). If a flow's |det J| is constant, then
log q(theta | x) = log N(f(theta); 0, I) + const, so over the flow's own draws log q is a shifted
-1/2 chi^2_D variable: all modes are copies of one Gaussian's level sets, and two modes of
different widths cannot both get their right peak height. For each observation the diagnostic
draws from the estimator and (i) where the latent is reachable (sbi's nflows and zuko flows,
this plugin's flows via ``latent_and_log_det``) measures the spread of
log|det J| = log q - log N(z) over the draws; (ii) always tests the density values against the
shifted -1/2 chi^2_D law (Kolmogorov-Smirnov with the shift fitted, Monte Carlo p-value).
An observation is flagged volume-preserving when the spread is below ``tolerance`` (or, without a
latent, when the chi^2 law is not rejected at ``alpha``).
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from scipy import stats
from torch import Tensor

from sbiplug import Diagnostic, DiagnosticContext, DiagnosticResult
from sbiplug.sbi_internals import nflows_flow_parts, trained_network
from sbiplug.toolkit import (
    DiagnosticInputError,
    check_float,
    check_positive_int,
    check_probability,
    figure_and_axes,
    monte_carlo_p_value,
    require_observations,
    require_variables,
    resolve_seed,
    seeded,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["VolumePreservationDiagnostic", "VolumePreservationWarning", "chi2_law_test"]


class VolumePreservationWarning(UserWarning):
    """The posterior estimator is (nearly) volume-preserving."""


def chi2_law_test(
    log_prob: np.ndarray, dim: int, *, num_null: int = 200, seed: int = 0
) -> tuple[float, float, float]:
    """KS test of density values against the shifted -1/2 chi^2_D law of a VP flow.

    Under a volume-preserving flow, ``c - log_prob ~ Gamma(D/2, 1)`` (that is 1/2 chi^2_D) for
    one constant c; c is fitted as ``mean(log_prob) + D/2`` and the KS statistic's null
    distribution with the fitted shift is simulated.

    Arguments:
        log_prob: log q at the flow's own draws, shape ``(n,)``.
        dim: D.
        num_null: Monte Carlo replicates of the null.

    Returns:
        The KS statistic, its Monte Carlo p-value and the fitted shift c.
    """
    half = dim / 2
    shift = float(log_prob.mean() + half)
    statistic = stats.kstest(shift - log_prob, stats.gamma(half).cdf).statistic
    rng = np.random.default_rng(seed)
    null = rng.gamma(half, size=(num_null, len(log_prob)))
    null = null - null.mean(axis=1, keepdims=True) + half
    null_statistics = np.array([stats.kstest(row, stats.gamma(half).cdf).statistic for row in null])
    return float(statistic), float(monte_carlo_p_value(statistic, null_statistics)), shift


def _estimator(context: DiagnosticContext) -> Any:
    posterior = context.posterior
    estimator = getattr(posterior, "posterior_estimator", None)
    if estimator is None and isinstance(context.estimator, torch.nn.Module):
        estimator = context.estimator  # a density estimator itself (e.g. an unconditional flow)
    elif estimator is None and context.estimator is not None:
        estimator = trained_network(context.estimator)
    if estimator is None or not hasattr(estimator, "log_prob") or not hasattr(estimator, "sample"):
        raise DiagnosticInputError(
            "diagnostic 'volume_preservation' needs a density estimator with log_prob and sample "
            "(an sbi DirectPosterior or a trained NPE trainer in the context)"
        )
    return estimator


def _log_det(estimator: Any, theta: Tensor, x: Tensor, log_prob: Tensor) -> Tensor | None:
    """log|det J| of theta -> z for draws ``(S, 1, D)``: ``(S,)``, or None without a latent."""
    if hasattr(estimator, "latent_and_log_det"):
        return estimator.latent_and_log_det(theta, x)[1][:, 0]
    if type(estimator).__name__ == "NFlowsFlow":
        # sbi's inverse_transform skips the embedding net (and so x's z-scoring) for nflows.
        transform, _, embedding_net = nflows_flow_parts(estimator)
        flat = theta.reshape(len(theta), -1)
        context = embedding_net(x.expand(len(flat), *x.shape[1:]))
        return transform(flat, context=context)[1]
    if hasattr(estimator, "inverse_transform"):  # zuko flows: the embedding is applied
        try:
            z = estimator.inverse_transform(theta, x)
        except (NotImplementedError, AttributeError, TypeError):
            return None
        z = z.reshape(len(theta), -1)
        latent = -0.5 * (z.pow(2).sum(-1) + z.shape[-1] * math.log(2 * math.pi))
        return log_prob - latent
    return None


class VolumePreservationDiagnostic(Diagnostic):
    """Is the posterior flow (nearly) volume-preserving, observation by observation?

    Arguments:
        num_samples: Draws from the estimator per observation.
        tolerance: Spread (std, nats) of log|det J| below which the flow counts as
            volume-preserving: its densities then vary across draws by less than
            ``exp(tolerance)`` through volume change.
        alpha: Level of the chi^2 law test (used for the flag only without a latent).
        num_null: Monte Carlo replicates of the test's null.
        seed: Seed of the draws (default: the context's, else 0).
    """

    name = "volume_preservation"

    def __init__(
        self,
        *,
        num_samples: int = 2000,
        tolerance: float = 0.05,
        alpha: float = 0.05,
        num_null: int = 200,
        seed: int | None = None,
    ) -> None:
        owner = self.name
        self.num_samples = check_positive_int("num_samples", num_samples, owner=owner)
        self.tolerance = check_float("tolerance", tolerance, minimum=0, owner=owner)
        self.alpha = check_probability("alpha", alpha, owner=owner)
        self.num_null = check_positive_int("num_null", num_null, owner=owner)
        self.seed = seed

    def run(self, context: DiagnosticContext) -> DiagnosticResult:
        estimator = _estimator(context)
        if getattr(estimator, "conditional", True):
            observations: Any = require_observations(context, self.name)
        else:
            observations = [None]  # an unconditional flow: one "observation", no condition
        seed = resolve_seed(self.seed, context)
        dim = int(estimator.input_shape[0])
        rows: dict[str, list[Any]] = {k: [] for k in ("log_prob", "log_det", "sd", "ks", "p", "c")}
        reachable = True
        for i, x in enumerate(observations):
            x = None if x is None else x.unsqueeze(0)
            with torch.no_grad(), seeded(seed + i):
                theta = estimator.sample((self.num_samples,), condition=x).reshape(-1, 1, dim)
                log_prob = estimator.log_prob(theta, condition=x)[:, 0]
                log_det = _log_det(estimator, theta, x, log_prob)
            values = log_prob.double().numpy()
            ks, p, c = chi2_law_test(values, dim, num_null=self.num_null, seed=seed + i)
            reachable = reachable and log_det is not None
            det = log_det.double().numpy() if log_det is not None else np.full_like(values, np.nan)
            for key, value in zip(rows, (values, det, float(np.std(det)), ks, p, c)):
                rows[key].append(value)
        spread = np.array(rows["sd"])
        p_values = np.array(rows["p"])
        flagged = spread < self.tolerance if reachable else p_values >= self.alpha
        self._warn(flagged, spread, p_values, reachable)
        data = self._dataset(rows, flagged, dim, reachable)
        num = int(flagged.sum())
        return DiagnosticResult(
            name=self.name,
            statistic=float(np.min(spread)) if reachable else float(np.max(p_values)),
            p_value=float(np.min(p_values)),
            passed=num == 0,
            threshold=self.tolerance if reachable else self.alpha,
            summary={"num_flagged": float(num), "num_observations": float(len(flagged))},
            data=data,
            message=(
                f"{num} of {len(flagged)} observations volume-preserving "
                + (
                    f"(sd of log|det J| < {self.tolerance:g}; smallest {np.min(spread):.3g})"
                    if reachable
                    else f"(chi^2 density-value law not rejected at {self.alpha:g})"
                )
            ),
        )

    @staticmethod
    def _warn(flagged: np.ndarray, spread: np.ndarray, p: np.ndarray, reachable: bool) -> None:
        if not flagged.any():
            return
        listing = ", ".join(
            f"#{i} (sd log|det J| = {spread[i]:.3g}, chi^2 p = {p[i]:.3g})"
            if reachable
            else f"#{i} (chi^2 p = {p[i]:.3g})"
            for i in np.flatnonzero(flagged)
        )
        warnings.warn(
            f"the posterior estimator is (nearly) volume-preserving for observations {listing}: "
            "its density is the latent Gaussian's up to one constant factor, so every mode gets "
            "the peak height of a single Gaussian shape and modes of different widths cannot "
            "have their correct relative heights; harmless for a near-Gaussian posterior, "
            "otherwise use a flow with free (non-volume-preserving) scales such as 'nsf'",
            VolumePreservationWarning,
            stacklevel=3,
        )

    def _dataset(
        self, rows: dict[str, list[Any]], flagged: np.ndarray, dim: int, reachable: bool
    ) -> Any:
        import xarray as xr

        return xr.Dataset(
            {
                "log_prob": (("observation", "draw"), np.stack(rows["log_prob"])),
                "log_det": (("observation", "draw"), np.stack(rows["log_det"])),
                "log_det_sd": ("observation", np.array(rows["sd"])),
                "ks_statistic": ("observation", np.array(rows["ks"])),
                "p_value": ("observation", np.array(rows["p"])),
                "shift": ("observation", np.array(rows["c"])),
                "volume_preserving": ("observation", flagged.astype(np.int8)),
            },
            coords={
                "observation": np.arange(len(flagged)),
                "draw": np.arange(len(rows["log_prob"][0])),
            },
            attrs={
                "dim": dim,
                "tolerance": self.tolerance,
                "alpha": self.alpha,
                "latent_reachable": int(reachable),
            },
        )

    def plot(self, result: DiagnosticResult, ax: Axes | None = None) -> Figure:
        """Density values of the draws, shifted, against the -1/2 chi^2_D law of a VP flow."""
        data = result.data
        require_variables(data, ("log_prob", "shift"), self.name)
        figure, ax = figure_and_axes(ax, figsize=(6, 3.5), layout="constrained")
        dim = int(data.attrs["dim"])
        grid = np.linspace(0, stats.gamma(dim / 2).ppf(0.995), 200)
        ax.plot(-grid, stats.gamma(dim / 2).pdf(grid), "k--", lw=1.5, label="VP law (-½χ²_D)")
        for i in data["observation"].values[:4]:
            values = data["log_prob"].values[i] - data["shift"].values[i]
            vp = bool(data["volume_preserving"].values[i])
            ax.hist(
                values,
                bins=50,
                density=True,
                histtype="step",
                lw=1.2,
                label=f"#{i} ({'VP' if vp else 'not VP'}, sd log|det J| "
                f"{data['log_det_sd'].values[i]:.2g})",
            )
        ax.set_xlabel("log q(θ|x) − fitted shift, θ ~ q")
        ax.set_ylabel("density")
        ax.set_title(result.message or self.name, fontsize=9)
        ax.legend(fontsize=7)
        return figure
