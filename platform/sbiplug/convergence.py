"""Are the chains of a posterior to be trusted? R-hat and ESS against Vehtari et al. (2021).

Rank-normalised split R-hat and bulk and tail effective sample sizes (Vehtari, Gelman, Simpson,
Carpenter & Bürkner 2021, "Rank-normalization, folding, and localization: an improved R-hat"),
computed with ArviZ. Imports neither torch nor ArviZ until a check runs.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["ESS_THRESHOLD", "RHAT_THRESHOLD", "ConvergenceWarning", "convergence_problems"]


def _arviz() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import arviz as az
    return az


#: Thresholds of Vehtari et al. (2021): trust the chains when R-hat <= 1.01 and the bulk and
#: tail effective sample sizes are at least 400 (100 per chain for four chains).
RHAT_THRESHOLD = 1.01
ESS_THRESHOLD = 400


class ConvergenceWarning(UserWarning):
    """MCMC chains disagree (R-hat too high) or carry too few effective draws (ESS too low)."""


def convergence_problems(posterior: xr.Dataset) -> list[str]:
    """Why the chains of a posterior are not to be trusted yet; empty when they are.

    Rank-normalised split R-hat and bulk and tail ESS (Vehtari, Gelman, Simpson, Carpenter &
    Bürkner 2021) of every parameter, against :data:`RHAT_THRESHOLD` and :data:`ESS_THRESHOLD`.
    A single chain is not checked: R-hat needs several, and one chain of independent draws
    (direct sampling) has nothing to converge.

    Arguments:
        posterior: Variables with dims ``(chain, draw)``.

    Returns:
        One line per failed check, naming the worst parameters and their values.
    """
    if posterior.sizes.get("chain", 1) < 2 or posterior.sizes.get("draw", 0) < 4:
        return []
    az = _arviz()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        rhat = az.rhat(posterior)
        bulk = az.ess(posterior, method="bulk")
        tail = az.ess(posterior, method="tail")
    problems = []
    checks = (
        ("R-hat", rhat, lambda v: v > RHAT_THRESHOLD, f"> {RHAT_THRESHOLD}", max),
        ("bulk ESS", bulk, lambda v: v < ESS_THRESHOLD, f"< {ESS_THRESHOLD}", min),
        ("tail ESS", tail, lambda v: v < ESS_THRESHOLD, f"< {ESS_THRESHOLD}", min),
    )
    for label, values, bad, bound, worst in checks:
        numbers = {name: float(values[name].values) for name in values.data_vars}
        failed = {
            name: value for name, value in numbers.items() if not math.isfinite(value) or bad(value)
        }
        if failed:
            shown = ", ".join(f"{name} {value:.3g}" for name, value in list(failed.items())[:4])
            more = f" and {len(failed) - 4} more" if len(failed) > 4 else ""
            problems.append(
                f"{label} {bound} for {len(failed)} of {len(numbers)} parameters "
                f"({shown}{more}; worst {worst(failed.values()):.3g})"
            )
    return problems
