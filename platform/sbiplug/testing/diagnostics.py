"""Conformance check for diagnostics: result type, finite scalars, netCDF round trip, plot."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sbiplug.testing._support import (
    fail,
)

if TYPE_CHECKING:
    from sbiplug.diagnostic import DiagnosticContext, DiagnosticResult

__all__ = ["check_diagnostic"]


def check_diagnostic(name: str, context: DiagnosticContext, **options: Any) -> DiagnosticResult:
    """Run a registered diagnostic and check its result.

    Checks: ``run`` returns a :class:`~sbiplug.diagnostic.DiagnosticResult` named ``name``
    with finite scalars (``statistic``, ``p_value``, ``threshold``, ``summary``), a boolean
    or ``None`` ``passed`` and an ``xarray.Dataset``; the result survives ``to_dataset`` ->
    netCDF on disk -> ``from_dataset`` unchanged; ``plot(ax=...)`` draws into the given axes
    and returns its figure, and the reloaded result plots on its own.

    Arguments:
        name: The registered diagnostic name.
        context: What the diagnostic runs on.
        options: Options for ``make_diagnostic``.

    Returns:
        The diagnostic's result.
    """
    import matplotlib.pyplot as plt
    import xarray as xr
    from matplotlib.figure import Figure

    from sbiplug.diagnostic import DiagnosticResult
    from sbiplug.registry import make_diagnostic

    subject = f"diagnostic {name!r}"
    diagnostic = make_diagnostic(name, **options)
    result = diagnostic.run(context)
    if not isinstance(result, DiagnosticResult):
        raise fail(subject, f"run returned a {type(result).__name__}, not a DiagnosticResult")
    if result.name != name:
        raise fail(subject, f"the result is named {result.name!r}")
    for key in ("statistic", "p_value", "threshold"):
        value = getattr(result, key)
        if value is not None and not (isinstance(value, float | int) and math.isfinite(value)):
            raise fail(subject, f"{key} must be a finite float or None, got {value!r}")
    for key, value in result.summary.items():
        if not (isinstance(value, float | int) and math.isfinite(value)):
            raise fail(subject, f"summary[{key!r}] must be a finite float, got {value!r}")
    if result.passed is not None and not isinstance(result.passed, bool):
        raise fail(subject, f"passed must be a bool or None, got {type(result.passed).__name__}")
    if not isinstance(result.data, xr.Dataset):
        raise fail(subject, f"data must be an xarray.Dataset, got {type(result.data).__name__}")

    with tempfile.TemporaryDirectory(prefix="sbiplug-check-") as folder:
        path = Path(folder) / f"{name}.nc"
        try:
            result.to_dataset().to_netcdf(path)
            with xr.open_dataset(path) as stored:
                reloaded = DiagnosticResult.from_dataset(stored.load())
        except Exception as error:
            raise fail(
                subject,
                f"the result does not round-trip through netCDF: {type(error).__name__}: {error}",
            ) from error
    if reloaded.scalars() != result.scalars() or reloaded.message != result.message:
        raise fail(
            subject,
            f"scalars changed in the netCDF round trip: {result.scalars()} -> {reloaded.scalars()}",
        )
    try:
        xr.testing.assert_allclose(reloaded.data, result.data)
    except AssertionError as error:
        raise fail(subject, f"data changed in the netCDF round trip: {error}") from None

    figure, ax = plt.subplots()
    try:
        drawn = diagnostic.plot(result, ax=ax)
        if drawn is not figure:
            raise fail(subject, "plot(result, ax=ax) must draw into ax and return its figure")
        if not (ax.lines or ax.collections or ax.patches or ax.images):
            raise fail(subject, "plot(result, ax=ax) drew nothing into ax")
        own = reloaded.plot()
        if not isinstance(own, Figure):
            raise fail(subject, f"plot() returned a {type(own).__name__}, not a Figure")
        plt.close(own)
    finally:
        plt.close(figure)
    return result
