"""The ArviZ adapter: the one module that knows which ArviZ major is installed.

A study's result is an :class:`xarray.DataTree` in ArviZ's group scheme
(:mod:`sbiplug.result_layout`). ArviZ 1.x (arviz-base, arviz-stats, arviz-plots; Python >=
3.12) works on data trees directly; ArviZ 0.x wants an ``InferenceData``, built here with
``az.from_datatree``. The functions below take either and call what the installed major has:
R-hat and ESS (Vehtari, Gelman, Simpson, Carpenter & Bürkner 2021), PSIS-LOO and model
comparison (Vehtari, Gelman & Gabry 2017; Yao et al. 2018, stacking), power-scaling
sensitivity (Kallioinen, Paananen, Bürkner & Vehtari 2023). Figures: :mod:`sbiplug.arviz_figures`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr

__all__ = [
    "ARVIZ_GROUPS",
    "ESS_THRESHOLD",
    "PSENSE_THRESHOLD",
    "RHAT_THRESHOLD",
    "SUMMARY_COLUMNS",
    "ConvergenceWarning",
    "LooEstimate",
    "arviz",
    "arviz_major_version",
    "compare",
    "concat",
    "convergence_problems",
    "loo",
    "psense",
    "psense_summary",
    "select_observation",
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
    "log_likelihood",
    "log_prior",
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
    """``InferenceData`` on ArviZ 0.x, the tree itself on ArviZ 1.x.

    Diagnostics are reachable as ``data.diagnostics["<name>"]`` on both majors: a subtree of
    the result on 1.x, an attribute holding it on 0.x (not a group, since ``az.concat``
    wants the sample dims in every group but the data groups).
    """
    az = arviz()
    if arviz_major_version() >= 1:
        return tree
    import xarray as xr

    groups = {name: tree[name].to_dataset() for name in ARVIZ_GROUPS if name in tree.children}
    subset = xr.DataTree.from_dict(groups)
    subset.attrs = dict(tree.attrs)
    with warnings.catch_warnings():
        # 0.x warns about groups outside its scheme, such as prior_sbc
        warnings.filterwarnings("ignore", message=".*InferenceData scheme.*")
        data = az.from_datatree(subset)
    if "diagnostics" in tree.children:
        data.diagnostics = tree["diagnostics"]
    return data


def _tree(data: Any) -> Any:
    """A DataTree on 1.x, an InferenceData on 0.x, whichever was given."""
    import xarray as xr

    if isinstance(data, xr.DataTree):
        return to_arviz(data)
    return data


def select_observation(data: Any, observation: int) -> Any:
    """One observation's posterior (and its data) in every group that has ``observation``.

    ``psense``, ``loo`` and ``compare`` treat every dim besides ``chain`` and ``draw`` as a data
    point: a result with several observations holds one posterior each, so pick one first.
    """
    if hasattr(data, "children"):  # a DataTree: groups without the dim are left alone
        return data.isel(observation=observation)
    return data.isel(observation=observation, inplace=False)


#: The columns of ArviZ 0.x's summary, which 1.x's are renamed and ordered to.
SUMMARY_COLUMNS = (
    "mean",
    "sd",
    "hdi_3%",
    "hdi_97%",
    "mcse_mean",
    "mcse_sd",
    "ess_bulk",
    "ess_tail",
    "r_hat",
)


def summarize(posterior: xr.Dataset, **kwargs: Any) -> pd.DataFrame:
    """ArviZ's summary table of a posterior dataset with ``chain`` and ``draw`` dims, with the
    same columns on both majors (0.x's: mean, sd, 94% HDI, MCSE, ESS, R-hat; 1.x's defaults,
    an 89% ETI, only when asked for with ``ci_kind``/``ci_prob``).

    With one chain only the statistics (mean, sd, HDI) are shown: R-hat and ESS need several.
    """
    az = arviz()
    if "kind" not in kwargs and posterior.sizes.get("chain", 1) < 2:
        kwargs["kind"] = "stats"
    current = arviz_major_version() >= 1
    renamed = current and "ci_kind" not in kwargs and "ci_prob" not in kwargs
    if current:
        kwargs.setdefault("round_to", None)  # numbers, as on 0.x, not rounded strings
    if renamed:
        kwargs.update(ci_kind="hdi", ci_prob=0.94)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        table = az.summary(posterior, **kwargs)
    if renamed:
        table = table.rename(columns={"hdi94_lb": "hdi_3%", "hdi94_ub": "hdi_97%"})
        order = [c for c in SUMMARY_COLUMNS if c in table.columns]
        table = table[order + [c for c in table.columns if c not in order]]
    return table


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
    A single chain is not checked (R-hat needs several), nor independent draws split into
    chains (``posterior.attrs["sampling"] == "independent"``): they have nothing to converge.

    Arguments:
        posterior: Variables with dims ``(chain, draw)``.

    Returns:
        One line per failed check, naming the worst parameters and their values.
    """
    if posterior.sizes.get("chain", 1) < 2 or posterior.sizes.get("draw", 0) < 4:
        return []
    if posterior.attrs.get("sampling") == "independent":
        return []  # independent draws split into chains have nothing to converge
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


@dataclass(frozen=True)
class LooEstimate:
    """PSIS-LOO of one posterior, the same fields on both ArviZ majors.

    Arguments:
        elpd: Expected log pointwise predictive density.
        se: Its standard error.
        p_loo: Effective number of parameters.
        pareto_k: Pareto k-hat of each data point; > 0.7 marks unreliable importance weights.
        native: What ArviZ returned.
    """

    elpd: float
    se: float
    p_loo: float
    pareto_k: np.ndarray
    native: Any


def loo(data: Any, observation: int | None = 0, **kwargs: Any) -> LooEstimate:
    """PSIS-LOO over the ``log_likelihood`` group's data points of one observation.

    Arguments:
        data: A result's DataTree or ArviZ data with a ``log_likelihood`` group.
        observation: Which observation's posterior (``None``: ``data`` has no such dim).
        kwargs: Passed to ``az.loo``.
    """
    az = arviz()
    data = _tree(data)
    if observation is not None:
        data = select_observation(data, observation)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Pareto.*")
        native = az.loo(data, pointwise=True, **kwargs)
    if arviz_major_version() >= 1:
        elpd, se, p, pareto_k = native.elpd, native.se, native.p, native.pareto_k
    else:
        elpd, se, p = native["elpd_loo"], native["se"], native["p_loo"]
        pareto_k = native["pareto_k"]
    pareto_k = np.ravel(np.asarray(pareto_k))
    return LooEstimate(float(elpd), float(se), float(p), pareto_k, native)


def compare(models: Mapping[str, Any], observation: int | None = 0, **kwargs: Any) -> Any:
    """ArviZ's model comparison by PSIS-LOO (stacking weights), best model first.

    Returns:
        ArviZ's table, with an ``elpd`` column on both majors (0.x calls it ``elpd_loo``).
    """
    az = arviz()
    prepared = {}
    for name, data in models.items():
        data = _tree(data)
        prepared[name] = data if observation is None else select_observation(data, observation)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Pareto.*")
        table = az.compare(prepared, **kwargs)
    return table.rename(columns={"elpd_loo": "elpd"})


#: Kallioinen et al. (2023): a sensitivity >= 0.05 flags a prior or likelihood as influential.
PSENSE_THRESHOLD = 0.05


def psense(data: Any, component: str = "prior", observation: int | None = 0) -> xr.Dataset:
    """Power-scaling sensitivity of each parameter (Kallioinen et al. 2023) to the prior or the
    likelihood: ``az.psens`` (0.x) or ``az.psense`` (1.x), importance reweighting at alpha =
    1 +- 0.01 (0.x: 1 / 1.01 and 1.01).

    Arguments:
        data: A result's DataTree or ArviZ data with ``log_prior`` / ``log_likelihood``.
        component: ``"prior"`` or ``"likelihood"``.
        observation: Which observation's posterior.

    Returns:
        One variable per parameter: the cumulative Jensen-Shannon distance's derivative.
    """
    if component not in ("prior", "likelihood"):
        raise ValueError(f"psense: component must be 'prior' or 'likelihood', got {component!r}")
    az = arviz()
    data = _tree(data)
    if observation is not None:
        data = select_observation(data, observation)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if arviz_major_version() >= 1:
            return az.psense(data, group=component)
        return az.psens(data, component=component)


def psense_summary(data: Any, observation: int | None = 0) -> pd.DataFrame:
    """Prior and likelihood sensitivity per parameter, with ArviZ 1.x's diagnosis column.

    Returns:
        Columns ``prior``, ``likelihood`` and ``diagnosis`` (``"✓"`` when neither flags).
    """
    import pandas as pd

    values = {
        component: psense(data, component, observation) for component in ("prior", "likelihood")
    }
    names = list(values["prior"].data_vars)
    table = pd.DataFrame(
        {component: [float(values[component][name]) for name in names] for component in values},
        index=names,
    )

    def diagnosis(row: pd.Series) -> str:
        strong_prior = row["prior"] >= PSENSE_THRESHOLD
        strong_likelihood = row["likelihood"] >= PSENSE_THRESHOLD
        if strong_prior and strong_likelihood:
            return "prior-data conflict"
        if strong_prior:
            return "strong prior / weak likelihood"
        if not strong_likelihood:
            return "weak likelihood"
        return "✓"

    table["diagnosis"] = table.apply(diagnosis, axis=1)
    return table


def concat(*data: Any, dim: str = "chain") -> Any:
    """Several results' ArviZ data joined along ``dim`` (``chain`` or ``draw``), every sample
    group together: ``az.concat`` on 0.x; on 1.x, which has none, group by group with xarray.
    """
    az = arviz()
    if dim not in ("chain", "draw"):
        raise ValueError(f"concat: dim must be 'chain' or 'draw', got {dim!r}")
    prepared = [_tree(item) for item in data]
    if arviz_major_version() < 1:
        return az.concat(*prepared, dim=dim)
    import xarray as xr

    first = prepared[0]
    groups = {}
    for node in first.subtree:
        path = node.relative_to(first)
        if path == ".":
            continue
        dataset = node.to_dataset(inherit=False)
        if dim in dataset.dims:
            parts = [item[path].to_dataset(inherit=False) for item in prepared]
            joined = xr.concat(parts, dim=dim)
            groups[path] = joined.assign_coords({dim: np.arange(joined.sizes[dim])})
        else:
            groups[path] = dataset
    tree = xr.DataTree.from_dict(groups)
    tree.attrs = dict(first.attrs)
    return tree
