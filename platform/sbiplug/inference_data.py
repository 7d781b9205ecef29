"""The ArviZ adapter: posterior draws in ArviZ's layout, and one place that knows which ArviZ
is installed.

Draws are kept as ``(chain, draw)``: an MCMC posterior's chains stay apart so ArviZ can compute
R-hat and ESS (Vehtari, Gelman, Simpson, Carpenter & Bürkner 2021, "Rank-normalization,
folding, and localization: an improved R-hat").

A study's result is an :class:`xarray.DataTree`. ArviZ 1.x works on data trees directly; ArviZ
0.x wants an ``InferenceData``, built here with ``az.from_datatree`` from the groups it knows
(``prior_sbc`` is kept as an extra group; the nested ``diagnostics`` groups are left out).
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr
    from torch import Tensor

__all__ = [
    "ARVIZ_GROUPS",
    "ESS_THRESHOLD",
    "RHAT_THRESHOLD",
    "ConvergenceWarning",
    "arviz",
    "arviz_major_version",
    "convergence_problems",
    "draw_posterior_samples",
    "posterior_log_prob",
    "summarize",
    "to_arviz",
]

ARVIZ_GROUPS = (
    "posterior",
    "posterior_predictive",
    "sample_stats",
    "prior",
    "observed_data",
    "constant_data",
    "prior_sbc",
)


def arviz() -> Any:
    """Import ArviZ without its import-time refactoring notice."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import arviz as az
    return az


def arviz_major_version() -> int:
    return int(arviz().__version__.split(".")[0])


def to_arviz(tree: xr.DataTree) -> Any:
    """``InferenceData`` on ArviZ 0.x, the tree itself on ArviZ 1.x."""
    az = arviz()
    if arviz_major_version() >= 1:
        return tree
    groups = {name: tree[name] for name in ARVIZ_GROUPS if name in tree.children}
    import xarray as xr

    subset = xr.DataTree.from_dict({name: node.to_dataset() for name, node in groups.items()})
    subset.attrs = dict(tree.attrs)
    with warnings.catch_warnings():
        # 0.x warns about groups outside its scheme, such as prior_sbc
        warnings.filterwarnings("ignore", message=".*InferenceData scheme.*")
        return az.from_datatree(subset)


def summarize(posterior: xr.Dataset, **kwargs: Any) -> pd.DataFrame:
    """ArviZ's summary table of a posterior dataset with ``chain`` and ``draw`` dims.

    With one chain only the statistics (mean, sd, HDI) are shown: R-hat and ESS need several.
    """
    az = arviz()
    if "kind" not in kwargs and posterior.sizes.get("chain", 1) < 2:
        kwargs["kind"] = "stats"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return az.summary(posterior, **kwargs)


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
    az = arviz()
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


def _torch() -> Any:
    # imported on use: the CLI's report imports this module, and listing plugins must stay light
    import torch

    return torch


def draw_posterior_samples(
    posterior: Any, observations: Tensor, num_samples: int, show_progress_bars: bool = False
) -> Tensor:
    """Posterior draws for each observation, with MCMC chains kept apart.

    An sbi ``MCMCPosterior`` returns its chains concatenated chain after chain; they are split
    back so ArviZ can compute R-hat and ESS, and it shows sbi's own MCMC bars. Other posteriors
    count as one chain, are sampled with ``sample_batched`` where they support it, and show one
    bar over all draws: sbi's rejection-sampling bar counts accepted draws past its total.

    Arguments:
        posterior: An sbi posterior.
        observations: Shape ``(num_observations, *observation_shape)``.
        num_samples: Draws per observation.
        show_progress_bars: Whether to show a progress bar.

    Returns:
        Shape ``(num_observations, num_chains, num_draws, num_parameters)``.
    """
    num_chains = int(getattr(posterior, "num_chains", 1) or 1) if _is_mcmc(posterior) else 1
    num_draws = math.ceil(num_samples / num_chains)
    total = num_chains * num_draws
    if num_chains > 1:
        per_observation = [
            posterior.sample((total,), x=x_o, show_progress_bars=show_progress_bars)
            for x_o in observations
        ]
        samples = _torch().stack(per_observation)
        return samples.reshape(len(observations), num_chains, num_draws, -1).detach().float()
    from tqdm.auto import tqdm

    with tqdm(
        total=total * len(observations),
        desc="Sampling posterior",
        unit="draw",
        disable=not show_progress_bars,
    ) as bar:
        if len(observations) == 1:
            samples = _sample(posterior, total, observations[0]).unsqueeze(0)
        else:
            try:
                batched = posterior.sample_batched(
                    (total,), x=observations, show_progress_bars=False
                )
                samples = batched.transpose(0, 1)
            except (NotImplementedError, AttributeError):
                draws = []
                for x_o in observations:
                    draws.append(_sample(posterior, total, x_o))
                    bar.update(total)
                samples = _torch().stack(draws)
        bar.update(bar.total - bar.n)
    return samples.reshape(len(observations), num_chains, num_draws, -1).detach().float()


def _sample(posterior: Any, num_samples: int, x_o: Tensor) -> Tensor:
    try:
        return posterior.sample((num_samples,), x=x_o, show_progress_bars=False)
    except TypeError:  # a posterior without the progress-bar switch
        return posterior.sample((num_samples,), x=x_o)


def _is_mcmc(posterior: Any) -> bool:
    from sbi.inference.posteriors import MCMCPosterior

    return isinstance(posterior, MCMCPosterior)


LEAKAGE_REJECTION_SAMPLES = 1000


def posterior_log_prob(posterior: Any, samples: Tensor, observations: Tensor) -> Tensor | None:
    """Normalised ``log q(theta | x)`` of each draw, shape ``samples.shape[:-1]``; ``None`` for
    MCMC posteriors (their potential is unnormalised) and posteriors without a density.

    sbi renormalises a posterior truncated to the prior's support by the fraction of its mass
    inside, estimated by rejection sampling; ``LEAKAGE_REJECTION_SAMPLES`` draws (instead of
    sbi's 10 000) keep that estimate's cost below the sampling's while its standard error stays
    under 0.016 in probability.
    """
    if _is_mcmc(posterior) or not hasattr(posterior, "log_prob"):
        return None
    values = []
    try:
        for draws, x_o in zip(samples, observations, strict=True):
            flat = draws.reshape(-1, draws.shape[-1])
            try:
                log_prob = posterior.log_prob(
                    flat,
                    x=x_o,
                    leakage_correction_params={
                        "num_rejection_samples": LEAKAGE_REJECTION_SAMPLES,
                        "show_progress_bars": False,
                    },
                )
            except TypeError:  # a posterior without sbi's leakage correction
                log_prob = posterior.log_prob(flat, x=x_o)
            values.append(log_prob.reshape(draws.shape[:-1]))
    except (NotImplementedError, AttributeError, TypeError):
        return None
    return _torch().stack(values).detach().float()
