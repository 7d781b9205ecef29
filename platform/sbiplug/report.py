"""The text report of a study result (``summary.txt``) and the folder of figures next to it.

A report degrades, it never fails whole: a diagnostic whose plugin is not installed is listed
as unavailable with the numbers and arrays it stored; a figure that cannot be drawn is skipped
with a warning; MCMC chains that disagree get a warning line under their table (R-hat and ESS
thresholds of Vehtari et al. 2021, :func:`sbiplug.inference_data.convergence_problems`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sbiplug.inference_data import convergence_problems
from sbiplug.toolkit.atomic import atomic_write_text

if TYPE_CHECKING:
    from sbiplug.diagnostic import DiagnosticResult
    from sbiplug.results import StudyResult

__all__ = [
    "FIGURE_FOLDER",
    "SUMMARY_FILE",
    "diagnostic_unavailable",
    "format_report",
    "write_report",
]

FIGURE_FOLDER = "figures"
SUMMARY_FILE = "summary.txt"
_MAX_ARRAYS = 8


def diagnostic_unavailable(name: str) -> str | None:
    """Why diagnostic ``name`` cannot be built here (its plugin missing or disabled), or
    ``None`` when it can."""
    from sbiplug.plugins import get_plugin_manager

    try:
        get_plugin_manager().get("diagnostics", name)
    except Exception as error:  # unknown, disabled, conflicting: all mean "not here"
        return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return None


def format_report(result: StudyResult, max_observations: int = 3) -> str:
    """The text summary of a study result: provenance, posterior tables, diagnostics."""
    provenance = result.provenance
    lines = [
        f"sbiplug study: simulator {provenance.get('simulator')!r}, "
        f"estimator {provenance.get('estimator')!r}, seed {provenance.get('seed')}",
        f"simulations: {provenance.get('num_simulations')} "
        f"({provenance.get('num_invalid_simulations', 0)} invalid, excluded; "
        f"{provenance.get('num_resumed_simulations', 0)} loaded from finished chunks)",
    ]
    if provenance.get("epochs_trained") is not None:
        lines.append(f"training: {provenance['epochs_trained']} epochs")
    timings = provenance.get("timings_s", {})
    if timings:
        lines.append(
            "wall time (s): "
            + ", ".join(f"{stage} {seconds:.1f}" for stage, seconds in timings.items())
        )
    num_observations = result.samples.shape[0]
    for index in range(min(num_observations, max_observations)):
        lines += ["", f"posterior of observation {index}:"]
        lines.append(result.summary(index, warn=False).to_string())
        for problem in convergence_problems(result.posterior_of(index)):
            lines.append(f"WARNING: chains not converged: {problem}")
    if num_observations > max_observations:
        lines.append(f"... and {num_observations - max_observations} more observations")
    if result.diagnostics:
        lines += ["", "diagnostics:"]
        for name, diagnostic in result.diagnostics.items():
            lines += _diagnostic_lines(name, diagnostic)
    return "\n".join(lines) + "\n"


def _diagnostic_lines(name: str, diagnostic: DiagnosticResult) -> list[str]:
    verdict = {True: "passed", False: "FAILED", None: "-"}[diagnostic.passed]
    lines = [f"  {name:<16} {verdict:<7} {diagnostic.message}".rstrip()]
    reason = diagnostic_unavailable(diagnostic.name)
    if reason is None:
        return lines
    lines.append(f"  {'':<16} unavailable here (no figure): {reason}")
    scalars = diagnostic.scalars()
    if scalars:
        lines.append(
            f"  {'':<16} stored: "
            + ", ".join(f"{key} {value:.4g}" for key, value in scalars.items())
        )
    data = diagnostic.data
    names = [] if data is None else list(data.data_vars)
    for variable in names[:_MAX_ARRAYS]:
        lines.append(f"  {'':<16} {_describe_array(variable, data[variable])}")
    if len(names) > _MAX_ARRAYS:
        lines.append(f"  {'':<16} ... and {len(names) - _MAX_ARRAYS} more arrays")
    return lines


def _describe_array(name: str, array: Any) -> str:
    dims = ", ".join(f"{dim}={size}" for dim, size in zip(array.dims, array.shape, strict=True))
    text = f"{name}({dims})"
    values = np.asarray(array.values)
    if values.size and np.issubdtype(values.dtype, np.number):
        finite = values[np.isfinite(values)] if np.issubdtype(values.dtype, np.floating) else values
        if finite.size:
            text += f": min {finite.min():.4g}, mean {finite.mean():.4g}, max {finite.max():.4g}"
        if finite.size < values.size:
            text += f" ({values.size - finite.size} not finite)"
    return text


def write_report(result: StudyResult, folder: Path) -> tuple[Path, list[Path]]:
    """Write ``summary.txt`` and the PNG figures into ``folder``.

    Returns:
        The summary's path and the figures written (a figure that cannot be drawn is left out,
        with a warning on the ``sbiplug`` logger).
    """
    folder.mkdir(parents=True, exist_ok=True)
    summary = atomic_write_text(folder / SUMMARY_FILE, format_report(result))
    figures = result.save_figures(folder / FIGURE_FOLDER)
    return summary, figures
