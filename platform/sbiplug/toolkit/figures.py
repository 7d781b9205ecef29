"""Figures for ``plot(result, ax=None)``: draw into the given axes or a new figure, return it.

Nothing here calls ``plt.show()``; the figure is the caller's to show, save or close.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import xarray as xr
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["figure_and_axes", "require_variables"]


def figure_and_axes(
    ax: Axes | None, *, figsize: tuple[float, float] = (5.0, 3.6), **subplots: Any
) -> tuple[Figure, Axes]:
    """``ax`` and its figure, or a new figure with one axes.

    Arguments:
        ax: Axes to draw into, or ``None``.
        figsize: Size of a new figure, in inches.
        **subplots: Further options of :func:`matplotlib.pyplot.subplots` for a new figure
            (e.g. ``layout="constrained"``).
    """
    if ax is not None:
        return ax.figure, ax  # type: ignore[return-value]
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=figsize, **subplots)
    return figure, ax


def require_variables(data: xr.Dataset | None, names: tuple[str, ...], diagnostic: str) -> None:
    """Raise :class:`ValueError` when a result's dataset lacks variables its plot needs."""
    missing = [n for n in names if data is None or n not in data]
    if missing:
        raise ValueError(
            f"cannot plot diagnostic {diagnostic!r}: its data lacks variables {missing}"
        )
