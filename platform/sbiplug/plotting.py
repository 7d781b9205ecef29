"""Figures of a study result: posterior pair plot, SBC ECDF differences, diagnostics.

The SBC plot follows Säilynoja, Bürkner & Vehtari (2022), "Graphical test for discrete
uniformity and its applications in goodness-of-fit evaluation and multiple sample comparison":
the difference between the ECDF of the probability integral transforms and the uniform CDF,
inside simultaneous confidence bands. Every function takes ``ax=`` and returns the figure; none
calls ``plt.show()``.
"""

from __future__ import annotations

import json
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

__all__ = ["plot_pair", "plot_sbc_ecdf", "save_figures"]


def _figure_of(ax: Any) -> Figure:
    first = np.ravel(np.asarray(ax, dtype=object))[0]
    return first.get_figure()


def plot_pair(tree: xr.DataTree, observation: int = 0, ax: Any = None, **kwargs: Any) -> Figure:
    """ArviZ pair plot of one observation's posterior, true parameters marked when known.

    Arguments:
        tree: A study result's DataTree.
        observation: Which observation's posterior.
        ax: An array of axes, ``(num_parameters, num_parameters)`` with marginals, as ArviZ
            expects; a new figure when ``None``.
        kwargs: Passed to ``az.plot_pair``.

    Returns:
        The figure.
    """
    az = arviz()
    posterior = tree["posterior"].to_dataset().isel(observation=observation)
    posterior = posterior.drop_vars("observation")
    names = json.loads(tree.attrs["parameter_names"])
    if "constant_data" in tree.children:
        truth = tree["constant_data"].to_dataset().isel(observation=observation)
        kwargs.setdefault(
            "reference_values", {name: float(truth[name].values) for name in names if name in truth}
        )
        kwargs.setdefault(
            "reference_values_kwargs", {"color": "C3", "marker": "x", "markersize": 10}
        )
    kwargs.setdefault("kind", "scatter")  # contours smear thin, curved posteriors
    if kwargs["kind"] == "scatter":
        kwargs.setdefault("scatter_kwargs", {"alpha": 0.5, "s": 10})
    kwargs.setdefault("marginals", True)
    if len(names) < 2:
        kwargs["marginals"] = False
    axes = az.plot_pair(posterior, var_names=names, ax=ax, show=False, **kwargs)
    figure = _figure_of(axes)
    figure.suptitle(f"posterior of observation {observation}")
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
        _, ax = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3), squeeze=False)
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
    axes[0].set_ylabel("ECDF - uniform CDF")
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
        figure = draw()
        path = folder / f"{stem}.png"
        figure.savefig(path, dpi=dpi, bbox_inches="tight")
        plt.close(figure)
        paths.append(path)
    return paths
