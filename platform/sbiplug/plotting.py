"""Figures of a study result: posterior pair plot, SBC ECDF differences, diagnostics.

The SBC plot follows Säilynoja, Bürkner & Vehtari (2022), "Graphical test for discrete
uniformity and its applications in goodness-of-fit evaluation and multiple sample comparison":
the difference between the ECDF of the probability integral transforms and the uniform CDF,
inside simultaneous confidence bands. Every function takes ``ax=`` and returns the figure; none
calls ``plt.show()``.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sbiplug.inference_data import arviz

if TYPE_CHECKING:
    import xarray as xr
    from matplotlib.figure import Figure

    from sbiplug.diagnostic import DiagnosticResult

__all__ = ["MAX_PAIR_PARAMETERS", "SBC_COLUMNS", "plot_pair", "plot_sbc_ecdf", "save_figures"]

MAX_PAIR_PARAMETERS = 6
SBC_COLUMNS = 5

_logger = logging.getLogger(__name__)


def _figure_of(ax: Any) -> Figure:
    first = np.ravel(np.asarray(ax, dtype=object))[0]
    return first.get_figure()


def plot_pair(
    tree: xr.DataTree,
    observation: int = 0,
    ax: Any = None,
    *,
    max_parameters: int = MAX_PAIR_PARAMETERS,
    **kwargs: Any,
) -> Figure:
    """ArviZ pair plot of one observation's posterior, true parameters marked when known.

    A one-parameter posterior is drawn as a histogram of its draws. With more than
    ``max_parameters`` parameters only the first ``max_parameters`` are drawn (a pair plot of
    ``n`` parameters has ``n**2`` panels) and the title says so; ``var_names=`` picks others.

    Arguments:
        tree: A study result's DataTree.
        observation: Which observation's posterior.
        ax: An array of axes, ``(k, k)`` for ``k`` drawn parameters (one axis for one), as
            ArviZ expects; a new figure when ``None``.
        max_parameters: Most parameters drawn by default.
        kwargs: Passed to ``az.plot_pair`` (``var_names`` chooses the parameters).

    Returns:
        The figure.
    """
    posterior = tree["posterior"].to_dataset().isel(observation=observation)
    posterior = posterior.drop_vars("observation")
    names = json.loads(tree.attrs["parameter_names"])
    chosen = list(kwargs.pop("var_names", None) or names[:max_parameters])
    unknown = [name for name in chosen if name not in posterior]
    if unknown:
        raise ValueError(f"plot_pair: no parameters {unknown}; this result has {names}")
    truth: dict[str, float] = {}
    if "constant_data" in tree.children:
        data = tree["constant_data"].to_dataset().isel(observation=observation)
        truth = {name: float(data[name].values) for name in chosen if name in data}
    title = f"posterior of observation {observation}"
    if len(chosen) < len(names):
        title += f": {len(chosen)} of {len(names)} parameters ({', '.join(chosen)})"
    if len(chosen) == 1:
        figure = _plot_marginal(posterior[chosen[0]].values.ravel(), chosen[0], truth, ax)
    else:
        figure = _plot_pairs(posterior, chosen, truth, ax, kwargs)
    figure.suptitle(title)
    return figure


def _plot_pairs(
    posterior: xr.Dataset, names: list[str], truth: dict[str, float], ax: Any, kwargs: Any
) -> Figure:
    if truth:
        kwargs.setdefault("reference_values", truth)
        kwargs.setdefault(
            "reference_values_kwargs", {"color": "C3", "marker": "x", "markersize": 10}
        )
    kwargs.setdefault("kind", "scatter")  # contours smear thin, curved posteriors
    if kwargs["kind"] == "scatter":
        kwargs.setdefault("scatter_kwargs", {"alpha": 0.5, "s": 10})
    kwargs.setdefault("marginals", True)
    if ax is None and len(names) > 2:
        # ArviZ sizes a grid of many panels far larger than a page
        kwargs.setdefault("figsize", (2.0 * len(names) + 1, 2.0 * len(names) + 1))
    axes = arviz().plot_pair(posterior, var_names=names, ax=ax, show=False, **kwargs)
    return _figure_of(axes)


def _plot_marginal(values: np.ndarray, name: str, truth: dict[str, float], ax: Any) -> Figure:
    """Histogram of one parameter's draws (ArviZ's pair plot needs two or more)."""
    from sbiplug.toolkit.figures import figure_and_axes

    axis = None if ax is None else np.ravel(np.asarray(ax, dtype=object))[0]
    figure, axis = figure_and_axes(axis, figsize=(4.5, 3.2))
    axis.hist(values, bins=min(50, max(10, len(values) // 20)), density=True, alpha=0.6)
    if name in truth:
        axis.axvline(truth[name], color="C3", label="true value")
        axis.legend(loc="best")
    axis.set_xlabel(name)
    axis.set_ylabel("density")
    return figure


def plot_sbc_ecdf(tree: xr.DataTree, ax: Any = None, ci_prob: float = 0.95) -> Figure:
    """ECDF of each parameter's SBC PIT values minus the uniform CDF, with simultaneous bands.

    Arguments:
        tree: A study result's DataTree with a ``prior_sbc`` group.
        ax: One axis per parameter (an array) or ``None`` for a new figure.
        ci_prob: Joint probability of the simultaneous confidence band.

    Returns:
        The figure.
    """
    import matplotlib.pyplot as plt
    from scipy.stats import uniform

    if "prior_sbc" not in tree.children:
        raise ValueError("this result has no SBC values (run the study with the 'sbc' diagnostic)")
    az = arviz()
    pit = tree["prior_sbc"].to_dataset()
    names = [name for name in json.loads(tree.attrs["parameter_names"]) if name in pit]
    if ax is None:
        columns = min(len(names), SBC_COLUMNS)
        rows = -(-len(names) // columns)
        _, ax = plt.subplots(rows, columns, figsize=(3.2 * columns, 3 * rows), squeeze=False)
        for spare in np.ravel(ax)[len(names) :]:
            spare.set_visible(False)
    axes = np.ravel(np.asarray(ax, dtype=object))
    if len(axes) < len(names):
        raise ValueError(f"plot_sbc_ecdf needs {len(names)} axes, got {len(axes)}")
    for name, axis in zip(names, axes, strict=False):
        with warnings.catch_warnings():
            # PIT values are ranks / N: discrete, but N is large enough to treat as continuous
            warnings.filterwarnings("ignore", message=".*Assuming variable is continuous.*")
            az.plot_ecdf(
                pit[name].values,
                cdf=uniform(0, 1).cdf,
                difference=True,
                # "optimized": ArviZ 0.23's "simulated" bands come out too narrow
                confidence_bands="optimized",
                ci_prob=ci_prob,
                eval_points=np.linspace(0, 1, 101),
                random_state=0,
                ax=axis,
                show=False,
            )
        axis.set_title(name)
        axis.set_xlabel("PIT")
    for axis in axes[: len(names) : SBC_COLUMNS]:
        axis.set_ylabel("ECDF - uniform CDF")
    figure = axes[0].get_figure()
    figure.suptitle(f"SBC: ECDF difference with {ci_prob:.0%} simultaneous bands")
    figure.tight_layout()
    return figure


def save_figures(
    tree: xr.DataTree,
    folder: str | os.PathLike[str],
    diagnostics: Mapping[str, DiagnosticResult] | None = None,
    dpi: int = 100,
) -> list[Path]:
    """Write the pair plot, the SBC plot and every diagnostic's figure as PNG files.

    A figure that cannot be drawn (say, a diagnostic whose plugin is not installed, so nothing
    knows how to draw its data) is skipped with a warning on the ``sbiplug`` logger; the
    others are still written.

    Arguments:
        tree: A study result's DataTree.
        folder: Where the files go (created when missing).
        diagnostics: Diagnostic name -> result; one figure each.
        dpi: Resolution of the files.

    Returns:
        The written paths.
    """
    import matplotlib.pyplot as plt

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    figures = {"posterior_pair": lambda: plot_pair(tree)}
    if "prior_sbc" in tree.children:
        figures["sbc_ecdf"] = lambda: plot_sbc_ecdf(tree)
    for name, diagnostic in (diagnostics or {}).items():
        figures[f"diagnostic_{name}"] = diagnostic.plot
    for stem, draw in figures.items():
        open_before = set(plt.get_fignums())
        try:
            figure = draw()
        except Exception as error:  # one figure must not cost the others
            for number in set(plt.get_fignums()) - open_before:
                plt.close(number)
            _logger.warning("figure %r not drawn: %s", stem, _one_line(error))
            continue
        path = folder / f"{stem}.png"
        figure.savefig(path, dpi=dpi, bbox_inches="tight")
        plt.close(figure)
        paths.append(path)
    return paths


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")
