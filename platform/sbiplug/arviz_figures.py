"""ArviZ's own figures on both majors: 0.x's ``plot_*`` functions or 1.x's arviz-plots.

Each function takes a result's DataTree (or ArviZ data), picks one observation, draws with the
installed ArviZ and returns the matplotlib figure; ``ax=`` draws into given axes on both
majors. The PIT ECDF uses simultaneous bands (Säilynoja, Bürkner & Vehtari 2022, "Graphical
test for discrete uniformity and its applications in goodness-of-fit evaluation and multiple
sample comparison"). The version difference lives here and in :mod:`sbiplug.inference_data`.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from sbiplug.inference_data import arviz, arviz_major_version, select_observation, to_arviz

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "figure_of",
    "plot_dist",
    "plot_ecdf_pit",
    "plot_forest",
    "plot_loo_pit",
    "plot_pair",
    "plot_ppc",
    "plot_rank",
    "plot_trace",
]


def figure_of(drawn: Any) -> Figure:
    """The matplotlib figure behind what an ArviZ plot returned (axes or a PlotCollection)."""
    viz = getattr(drawn, "viz", None)
    if viz is not None:
        return viz["figure"].item()
    first = np.ravel(np.asarray(drawn, dtype=object))[0]
    return first.get_figure()


@contextlib.contextmanager
def _onto(ax: Any) -> Iterator[None]:
    """On ArviZ 1.x, make arviz-plots draw into ``ax`` instead of a new figure."""
    if ax is None or arviz_major_version() < 1:
        yield
        return
    from arviz_plots.backend import matplotlib as backend

    given = np.ravel(np.asarray(ax, dtype=object))
    original = backend.create_plotting_grid

    def onto_given(number: int, rows: int = 1, cols: int = 1, **_: Any) -> Any:
        if len(given) < number:
            raise ValueError(f"this figure needs {number} axes, got {len(given)}")
        grid = np.full(rows * cols, None, dtype=object)
        grid[:number] = given[:number]
        return given[0].get_figure(), grid.reshape(rows, cols)

    backend.create_plotting_grid = onto_given
    try:
        yield
    finally:
        backend.create_plotting_grid = original


def _prepare(data: Any, observation: int | None) -> Any:
    if observation is not None:
        data = select_observation(data, observation)
    return to_arviz(data) if hasattr(data, "children") else data


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        # PIT values are ranks / N: discrete, but N is large enough to treat as continuous
        warnings.filterwarnings("ignore", message=".*Assuming variable is continuous.*")
        warnings.filterwarnings("ignore", message=".*Pareto.*")
        yield


def _draw(call_0x: Any, call_1x: Any, ax: Any) -> Figure:
    with _quiet(), _onto(ax):
        drawn = call_1x() if arviz_major_version() >= 1 else call_0x()
    return figure_of(drawn)


def plot_ecdf_pit(
    data: Any, var_names: Sequence[str] | None = None, ax: Any = None, ci_prob: float = 0.95
) -> Figure:
    """ECDF of the ``prior_sbc`` PIT values against the uniform, simultaneous ``ci_prob`` bands:
    ``az.plot_ecdf_pit`` (1.x) or ``az.plot_ecdf(pit, difference=True)`` per parameter (0.x)."""
    import matplotlib.pyplot as plt
    from scipy.stats import uniform

    data = _prepare(data, None)
    pit = data["prior_sbc"] if arviz_major_version() >= 1 else data.prior_sbc
    names = list(var_names or pit.data_vars)

    def legacy() -> Any:
        axes = ax
        if axes is None:
            _, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3), squeeze=False)
        axes = np.ravel(np.asarray(axes, dtype=object))
        for name, axis in zip(names, axes, strict=False):
            az = arviz()
            az.plot_ecdf(
                np.ravel(pit[name].values),
                cdf=uniform(0, 1).cdf,
                difference=True,
                confidence_bands="optimized",  # 0.23's "simulated" bands come out too narrow
                ci_prob=ci_prob,
                eval_points=np.linspace(0, 1, 101),
                random_state=0,
                ax=axis,
                show=False,
            )
            axis.set_title(name)
            axis.set_xlabel("PIT")
        return axes

    def current() -> Any:
        collection = arviz().plot_ecdf_pit(
            data, var_names=names, group="prior_sbc", envelope_prob=ci_prob, backend="matplotlib"
        )
        # arviz-plots 1.3's method="envelope" fails (an xarray scalar given to np.linspace), so
        # its simultaneous envelope is drawn here with the arviz-stats function it calls
        from arviz_stats.ecdf_utils import ecdf_pit

        plots = collection.viz["plot"]
        for name in names:
            values = np.ravel(pit[name].values)
            x, _, lower, upper = ecdf_pit(values, ci_prob, n_simulations=1000)
            axis = plots[name].item()
            axis.fill_between(x, lower - x, upper - x, color="C0", alpha=0.2, step="post")
        return collection

    return _draw(legacy, current, ax)


def plot_pair(
    data: Any,
    var_names: Sequence[str],
    observation: int | None = 0,
    ax: Any = None,
    **kwargs: Any,
) -> Figure:
    """Pair plot (scatter, marginals on the diagonal) of two or more parameters' draws."""
    data = _prepare(data, observation)
    names = list(var_names)

    def legacy() -> Any:
        kwargs.setdefault("kind", "scatter")
        if kwargs["kind"] == "scatter":
            kwargs.setdefault("scatter_kwargs", {"alpha": 0.5, "s": 10})
        kwargs.setdefault("marginals", True)
        if ax is None and len(names) > 2:
            kwargs.setdefault("figsize", (2.0 * len(names) + 1, 2.0 * len(names) + 1))
        return arviz().plot_pair(data, var_names=names, ax=ax, show=False, **kwargs)

    def current() -> Any:
        reference = kwargs.pop("reference_values", None) or {}
        style = kwargs.pop("reference_values_kwargs", None) or {"color": "C3", "marker": "x"}
        if ax is None and len(names) > 2:
            kwargs.setdefault("figure_kwargs", {"figsize": (2.0 * len(names), 2.0 * len(names))})
        matrix = arviz().plot_pair(data, var_names=names, backend="matplotlib", **kwargs)
        _mark_pairs(matrix, reference, style, kwargs.get("triangle", "lower"))
        return matrix

    return _draw(legacy, current, ax)


def _mark_pairs(
    matrix: Any, reference: dict[str, float], style: dict[str, Any], triangle: str
) -> None:
    """Mark reference values on a 1.x pair matrix (0.x's ``reference_values``)."""
    if not reference:
        return
    plots = matrix.viz["plot"]
    for row in plots["row_index"].values:
        for col in plots["col_index"].values:
            cell = plots.sel(row_index=row, col_index=col)
            axis = cell.item()
            x_name, y_name = str(cell["var_name_x"].values), str(cell["var_name_y"].values)
            if axis is None or x_name not in reference or not axis.get_visible():
                continue
            if row == col:
                axis.axvline(reference[x_name], color=style.get("color", "C3"))
            elif y_name in reference and (
                triangle == "both" or (row > col) == (triangle == "lower")
            ):
                axis.plot([reference[x_name]], [reference[y_name]], linestyle="none", **style)


def plot_dist(
    data: Any, var_names: Sequence[str], observation: int | None = 0, ax: Any = None
) -> Figure:
    """Marginal posterior of each parameter with its credible interval and point estimate:
    ``az.plot_posterior`` (0.x) or ``az.plot_dist`` (1.x)."""
    data = _prepare(data, observation)
    names = list(var_names)
    return _draw(
        lambda: arviz().plot_posterior(data, var_names=names, ax=ax, show=False),
        lambda: arviz().plot_dist(data, var_names=names, backend="matplotlib"),
        ax,
    )


def plot_forest(
    data: Any, var_names: Sequence[str], observation: int | None = 0, ax: Any = None
) -> Figure:
    """Credible intervals of every parameter in one panel, chain by chain."""
    data = _prepare(data, observation)
    names = list(var_names)
    return _draw(
        lambda: arviz().plot_forest(data, var_names=names, ax=ax, show=False),
        lambda: arviz().plot_forest(data, var_names=names, backend="matplotlib"),
        ax,
    )


def plot_ppc(
    data: Any, observation: int | None = 0, num_samples: int = 50, ax: Any = None
) -> Figure:
    """Posterior predictive check: the observed ``x`` against data simulated from draws
    (``num_samples`` of them, fewer where fewer were simulated)."""
    data = _prepare(data, observation)
    predictive = data["posterior_predictive"] if hasattr(data, "children") else None
    if predictive is None:
        predictive = data.posterior_predictive
    num_samples = min(num_samples, predictive.sizes["chain"] * predictive.sizes["draw"])
    return _draw(
        lambda: arviz().plot_ppc(
            data, var_names=["x"], num_pp_samples=num_samples, random_seed=0, ax=ax, show=False
        ),
        lambda: arviz().plot_ppc_dist(
            data, var_names=["x"], num_samples=num_samples, backend="matplotlib"
        ),
        ax,
    )


def plot_trace(
    data: Any, var_names: Sequence[str], observation: int | None = 0, ax: Any = None
) -> Figure:
    """Trace and marginal of each chain (for MCMC: do the chains agree?)."""
    data = _prepare(data, observation)
    names = list(var_names)
    return _draw(
        lambda: arviz().plot_trace(data, var_names=names, axes=ax, show=False),
        lambda: arviz().plot_trace_dist(data, var_names=names, backend="matplotlib"),
        ax,
    )


def plot_rank(
    data: Any, var_names: Sequence[str], observation: int | None = 0, ax: Any = None
) -> Figure:
    """Rank plot of the chains: uniform ranks when the chains mix."""
    data = _prepare(data, observation)
    names = list(var_names)
    return _draw(
        lambda: arviz().plot_rank(data, var_names=names, kind="vlines", ax=ax, show=False),
        lambda: arviz().plot_rank(data, var_names=names, backend="matplotlib"),
        ax,
    )


def plot_loo_pit(data: Any, observation: int | None = 0, ax: Any = None) -> Figure:
    """LOO-PIT ECDF of the observed data points of one observation.

    Needs a pointwise ``log_likelihood`` and ``posterior_predictive`` data. The predictive data
    come from the first draws of each chain, so the draws are cut to those first.

    Arguments:
        data: A result's DataTree.
        observation: Which observation's posterior.
        ax: One axis, or ``None`` for a new figure.
    """
    import xarray as xr

    for group in ("log_likelihood", "posterior_predictive"):
        if group not in data.children:
            raise ValueError(f"plot_loo_pit needs a {group!r} group; this result has none")
    num_draws = data["posterior_predictive"].sizes["draw"]
    groups = {}
    for name, node in data.children.items():
        dataset = node.to_dataset()
        if name in ("posterior", "log_likelihood", "log_prior", "sample_stats"):
            dataset = dataset.isel(draw=slice(0, num_draws))
        groups[name] = dataset
    cut = xr.DataTree.from_dict(groups)
    cut.attrs = dict(data.attrs)
    data = _prepare(cut, observation)
    return _draw(
        lambda: arviz().plot_loo_pit(data, y="x", ecdf=True, ax=ax, show=False),
        lambda: arviz().plot_loo_pit(data, var_names=["x"], backend="matplotlib"),
        ax,
    )
