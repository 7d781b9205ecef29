"""Figures of a study result, drawn by ArviZ's own functions (:mod:`sbiplug.arviz_figures`).

Pair plot, marginal posteriors, forest, posterior predictive check, trace and rank plots (MCMC)
and the SBC PIT ECDF with simultaneous bands (Säilynoja, Bürkner & Vehtari 2022), with readable
defaults: many parameters draw a subset, said in the title. Every function takes ``ax=`` and
returns the figure; none calls ``plt.show()``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sbiplug import arviz_figures

if TYPE_CHECKING:
    import xarray as xr
    from matplotlib.figure import Figure

    from sbiplug.diagnostic import DiagnosticResult

__all__ = [
    "MAX_PAIR_PARAMETERS",
    "MAX_PANELS",
    "SBC_COLUMNS",
    "plot_forest",
    "plot_pair",
    "plot_posterior",
    "plot_ppc",
    "plot_sbc_ecdf",
    "plot_trace",
    "save_figures",
]

MAX_PAIR_PARAMETERS = 6
#: Most panels a one-panel-per-parameter figure draws by default.
MAX_PANELS = 12
SBC_COLUMNS = 5

_logger = logging.getLogger(__name__)


def _names(tree: xr.DataTree) -> list[str]:
    return json.loads(tree.attrs["parameter_names"])


def _choose(
    tree: xr.DataTree, var_names: Sequence[str] | None, most: int, what: str
) -> tuple[list[str], str]:
    """The parameters drawn and the title's note on a subset."""
    names = _names(tree)
    chosen = list(var_names or names[:most])
    unknown = [name for name in chosen if name not in names]
    if unknown:
        raise ValueError(f"{what}: no parameters {unknown}; this result has {names}")
    note = ""
    if len(chosen) < len(names):
        note = f": {len(chosen)} of {len(names)} parameters ({', '.join(chosen)})"
    return chosen, note


def _truth(tree: xr.DataTree, observation: int, names: list[str]) -> dict[str, float]:
    if "constant_data" not in tree.children:
        return {}
    data = tree["constant_data"].to_dataset().isel(observation=observation)
    return {name: float(data[name].values) for name in names if name in data}


def _grid(count: int, columns: int, width: float = 3.2, height: float = 3.0) -> np.ndarray:
    import matplotlib.pyplot as plt

    columns = max(1, min(count, columns))
    rows = -(-count // columns)
    _, axes = plt.subplots(rows, columns, figsize=(width * columns, height * rows), squeeze=False)
    for spare in np.ravel(axes)[count:]:
        spare.set_visible(False)
    return axes


def plot_pair(
    tree: xr.DataTree,
    observation: int = 0,
    ax: Any = None,
    *,
    max_parameters: int = MAX_PAIR_PARAMETERS,
    **kwargs: Any,
) -> Figure:
    """ArviZ pair plot of one observation's posterior, true parameters marked when known.

    A one-parameter posterior is drawn as ArviZ's marginal (:func:`plot_posterior`). With more
    than ``max_parameters`` parameters only the first ``max_parameters`` are drawn (a pair plot
    of ``n`` parameters has ``n**2`` panels) and the title says so; ``var_names=`` picks others.

    Arguments:
        tree: A study result's DataTree.
        observation: Which observation's posterior.
        ax: An array of axes, ``(k, k)`` for ``k`` drawn parameters (one axis for one); a new
            figure when ``None``.
        max_parameters: Most parameters drawn by default.
        kwargs: Passed to ArviZ's pair plot (``var_names`` chooses the parameters).

    Returns:
        The figure.
    """
    chosen, note = _choose(tree, kwargs.pop("var_names", None), max_parameters, "plot_pair")
    if len(chosen) == 1:
        figure = plot_posterior(tree, observation, ax, var_names=chosen)
        figure.suptitle(f"posterior of observation {observation}{note}")
        return figure
    truth = _truth(tree, observation, chosen)
    if truth:
        kwargs.setdefault("reference_values", truth)
        kwargs.setdefault(
            "reference_values_kwargs", {"color": "C3", "marker": "x", "markersize": 10}
        )
    figure = arviz_figures.plot_pair(tree, chosen, observation, ax, **kwargs)
    figure.suptitle(f"posterior of observation {observation}{note}")
    return figure


def plot_posterior(
    tree: xr.DataTree,
    observation: int = 0,
    ax: Any = None,
    *,
    var_names: Sequence[str] | None = None,
    max_parameters: int = MAX_PANELS,
) -> Figure:
    """Each parameter's marginal posterior (ArviZ's credible interval and point estimate), the
    true value as a red line labelled ``true value`` when known.

    Arguments:
        tree: A study result's DataTree.
        observation: Which observation's posterior.
        ax: One axis per drawn parameter, or ``None`` for a new figure.
        var_names: Parameters to draw (default: the first ``max_parameters``).
        max_parameters: Most parameters drawn by default.
    """
    chosen, note = _choose(tree, var_names, max_parameters, "plot_posterior")
    axes = ax if ax is not None else _grid(len(chosen), 4, 3.6, 2.8)
    figure = arviz_figures.plot_dist(tree, chosen, observation, axes)
    truth = _truth(tree, observation, chosen)
    for name, axis in zip(chosen, np.ravel(np.asarray(axes, dtype=object)), strict=False):
        if name in truth:
            axis.axvline(truth[name], color="C3", label="true value")
        axis.set_xlabel(name)
    figure.suptitle(f"posterior of observation {observation}{note}")
    return figure


def plot_forest(
    tree: xr.DataTree,
    observation: int = 0,
    ax: Any = None,
    *,
    var_names: Sequence[str] | None = None,
    max_parameters: int = 3 * MAX_PANELS,
) -> Figure:
    """ArviZ's forest plot of one observation's posterior: an interval per parameter and chain."""
    chosen, note = _choose(tree, var_names, max_parameters, "plot_forest")
    figure = arviz_figures.plot_forest(tree, chosen, observation, ax)
    figure.suptitle(f"posterior of observation {observation}{note}")
    return figure


def plot_trace(
    tree: xr.DataTree,
    observation: int = 0,
    ax: Any = None,
    *,
    var_names: Sequence[str] | None = None,
    max_parameters: int = MAX_PAIR_PARAMETERS,
    kind: str = "trace",
) -> Figure:
    """ArviZ's trace (``kind="trace"``) or rank plot (``kind="rank"``) of the chains."""
    if kind not in ("trace", "rank"):
        raise ValueError(f"plot_trace: kind must be 'trace' or 'rank', got {kind!r}")
    chosen, note = _choose(tree, var_names, max_parameters, "plot_trace")
    draw = arviz_figures.plot_trace if kind == "trace" else arviz_figures.plot_rank
    figure = draw(tree, chosen, observation, ax)
    figure.suptitle(f"chains of observation {observation}{note}")
    return figure


def plot_ppc(
    tree: xr.DataTree, observation: int = 0, ax: Any = None, *, num_samples: int = 50
) -> Figure:
    """ArviZ's posterior predictive check of one observation: the observed ``x`` against
    ``num_samples`` data sets simulated from posterior draws."""
    if "posterior_predictive" not in tree.children:
        raise ValueError(
            "this result has no posterior predictive data (run with num_predictive_draws > 0)"
        )
    figure = arviz_figures.plot_ppc(tree, observation, num_samples, ax)
    figure.suptitle(f"posterior predictive check of observation {observation}")
    return figure


def plot_sbc_ecdf(tree: xr.DataTree, ax: Any = None, ci_prob: float = 0.95) -> Figure:
    """ECDF of each parameter's SBC PIT values against the uniform, with simultaneous bands,
    drawn by ArviZ's PIT ECDF plot into rows of :data:`SBC_COLUMNS` panels.

    Arguments:
        tree: A study result's DataTree with a ``prior_sbc`` group.
        ax: One axis per parameter (an array) or ``None`` for a new figure.
        ci_prob: Joint probability of the simultaneous confidence band.

    Returns:
        The figure.
    """
    if "prior_sbc" not in tree.children:
        raise ValueError("this result has no SBC values (run the study with the 'sbc' diagnostic)")
    pit = tree["prior_sbc"].to_dataset()
    names = [name for name in _names(tree) if name in pit]
    axes = ax if ax is not None else _grid(len(names), SBC_COLUMNS)
    flat = np.ravel(np.asarray(axes, dtype=object))
    if len(flat) < len(names):
        raise ValueError(f"plot_sbc_ecdf needs {len(names)} axes, got {len(flat)}")
    figure = arviz_figures.plot_ecdf_pit(tree, names, flat, ci_prob)
    for name, axis in zip(names, flat, strict=False):
        axis.set_title(name)
        axis.set_xlabel("PIT")
    figure.suptitle(f"SBC: PIT ECDF with {ci_prob:.0%} simultaneous bands")
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
