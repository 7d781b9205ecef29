"""One self-contained HTML page per study: ``sbiplug report DIR --html``.

The page shows the setup and provenance, the posterior summary table, the figures, every
diagnostic with its verdict, statistic and figure, the warnings a reader should see first
(failed checks such as misspecification, MCMC chains that disagree by R-hat or ESS, low
acceptance, invalid simulations) and the package versions. Figures are inlined as base64 PNG
and the style sheet is inline, so the file opens anywhere without network access; it has no
scripts.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import warnings as warnings_module
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sbiplug.inference_data import convergence_problems
from sbiplug.toolkit.atomic import atomic_write_text

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from sbiplug.results import StudyResult

__all__ = [
    "HTML_FILE",
    "LOW_ACCEPTANCE",
    "render_html",
    "study_warnings",
    "write_html",
]

HTML_FILE = "report.html"
LOW_ACCEPTANCE = 0.1  # the share of draws inside the prior support below which sbi warns

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; }
table { border-collapse: collapse; margin: .5em 0 1em; font-size: .92em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: left; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f7f7f7; padding: .6em; overflow-x: auto; font-size: .85em; }
img { max-width: 100%; height: auto; display: block; margin: .5em 0; }
figure { margin: 1em 0; } figcaption { font-size: .9em; color: #555; }
.passed { color: #17692d; font-weight: bold; } .failed { color: #b00020; font-weight: bold; }
.warnings { background: #fff4e5; border-left: 4px solid #e08a00; padding: .5em 1em; }
.ok { background: #edf7ee; border-left: 4px solid #17692d; padding: .5em 1em; }
"""


def _escape(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return _escape(value)


def _figure_html(draw: Callable[[], Figure], caption: str, dpi: int) -> str:
    """The figure as an inline PNG, or a note when it cannot be drawn."""
    import matplotlib.pyplot as plt

    try:
        figure = draw()
    except Exception as error:  # one broken figure must not cost the whole page
        return (
            f'<p class="failed">figure {_escape(caption)} could not be drawn: {_escape(error)}</p>'
        )
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(figure)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return (
        f'<figure><img alt="{_escape(caption)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{_escape(caption)}</figcaption></figure>"
    )


def _key_value_table(rows: dict[str, Any]) -> str:
    cells = "".join(
        f"<tr><th>{_escape(key)}</th><td>{_number(value)}</td></tr>" for key, value in rows.items()
    )
    return f"<table>{cells}</table>"


def _verdict(passed: bool | None) -> str:
    return {
        True: '<span class="passed">passed</span>',
        False: '<span class="failed">FAILED</span>',
    }.get(passed, "-")


def _acceptance_rates(result: StudyResult) -> dict[str, float]:
    """Acceptance rates recorded anywhere in the provenance or the diagnostics' summaries."""
    rates = {}
    sources = {"provenance": result.provenance}
    sources.update({f"diagnostic {name}": d.summary for name, d in result.diagnostics.items()})
    for source, values in sources.items():
        for key, value in values.items():
            if "acceptance" in key and isinstance(value, (int, float)):
                rates[f"{source}: {key}"] = float(value)
    return rates


def study_warnings(result: StudyResult, max_observations: int = 3) -> list[str]:
    """What a reader should see first: failed diagnostics, R-hat and ESS of MCMC chains
    (:func:`sbiplug.inference_data.convergence_problems`), acceptance, invalid simulations.

    Arguments:
        result: A study result.
        max_observations: Observations whose chains are checked.

    Returns:
        One plain-text line per warning.
    """
    lines = []
    for name, diagnostic in result.diagnostics.items():
        if diagnostic.passed is False:
            kind = "misspecification suspected" if name == "misspecification" else "failed"
            lines.append(f"diagnostic {name!r} {kind}: {diagnostic.message}")
    posterior = result.to_datatree()["posterior"].to_dataset()
    for index in range(min(result.samples.shape[0], max_observations)):
        draws = posterior.isel(observation=index).drop_vars("observation", errors="ignore")
        for problem in convergence_problems(draws):
            lines.append(f"observation {index}: MCMC chains not converged: {problem}")
    for source, rate in _acceptance_rates(result).items():
        if rate < LOW_ACCEPTANCE:
            lines.append(
                f"low acceptance ({source} = {rate:.3g} < {LOW_ACCEPTANCE}): most posterior "
                "draws fell outside the prior support"
            )
    invalid = result.num_invalid_simulations
    if invalid:
        lines.append(f"{invalid} simulations returned NaN or inf and were excluded from training")
    for line in result.provenance.get("warnings", []):
        lines.append(str(line))
    return lines


def render_html(result: StudyResult, *, max_observations: int = 3, dpi: int = 80) -> str:
    """The study as one HTML document with everything inlined.

    Arguments:
        result: A study result (fresh or loaded with :meth:`StudyResult.load`).
        max_observations: Observations that get a summary table and a pair plot.
        dpi: Resolution of the inlined figures.

    Returns:
        The HTML text.
    """
    from sbiplug import plotting

    provenance = result.provenance
    tree = result.to_datatree()
    simulator, estimator = provenance.get("simulator"), provenance.get("estimator")
    title = f"sbiplug study: {simulator} / {estimator}"
    parts = [f"<h1>{_escape(title)}</h1>"]

    warnings = study_warnings(result, max_observations)
    if warnings:
        items = "".join(f"<li>{_escape(line)}</li>" for line in warnings)
        parts.append(f'<div class="warnings" id="warnings"><h2>Warnings</h2><ul>{items}</ul></div>')
    else:
        parts.append('<div class="ok" id="warnings"><p>No warnings.</p></div>')

    setup = {key: value for key, value in tree.attrs.items() if key != "provenance"}
    for key in ("simulator_class", "epochs_trained", "num_resumed_simulations"):
        if key in provenance:
            setup[key] = provenance[key]
    setup.update({f"time {stage} (s)": s for stage, s in provenance.get("timings_s", {}).items()})
    options = {
        key: provenance[key]
        for key in (
            "simulator_options",
            "estimator_options",
            "train_options",
            "posterior_options",
            "diagnostics",
            "simulation",
        )
        if key in provenance
    }
    parts += [
        '<h2 id="setup">Setup and provenance</h2>',
        _key_value_table(setup),
        f"<pre>{_escape(json.dumps(options, indent=2, default=str))}</pre>",
    ]

    parts.append('<h2 id="posterior">Posterior</h2>')
    num_observations = result.samples.shape[0]
    for index in range(min(num_observations, max_observations)):
        parts.append(f"<h3>Observation {index}</h3>")
        if result.true_parameters is not None:
            truth = dict(zip(result.parameter_names, result.true_parameters[index].tolist()))
            parts.append("<p>True parameters:</p>" + _key_value_table(truth))
        with warnings_module.catch_warnings():  # convergence is on the page, under Warnings
            warnings_module.simplefilter("ignore")
            table = result.summary(index)
        parts.append(table.to_html(float_format=lambda v: f"{v:.4g}"))
        parts.append(
            _figure_html(
                lambda index=index: plotting.plot_pair(tree, observation=index),
                f"posterior pair plot, observation {index}",
                dpi,
            )
        )
    if num_observations > max_observations:
        parts.append(f"<p>... and {num_observations - max_observations} more observations.</p>")
    if "prior_sbc" in tree.children:
        parts.append(_figure_html(lambda: plotting.plot_sbc_ecdf(tree), "SBC ECDF difference", dpi))

    parts.append('<h2 id="diagnostics">Diagnostics</h2>')
    if result.diagnostics:
        rows = "".join(
            f"<tr><td>{_escape(name)}</td><td>{_verdict(d.passed)}</td>"
            f'<td class="num">{_number(d.statistic)}</td><td class="num">{_number(d.p_value)}</td>'
            f'<td class="num">{_number(d.threshold)}</td><td>{_escape(d.message)}</td></tr>'
            for name, d in result.diagnostics.items()
        )
        parts.append(
            "<table><tr><th>diagnostic</th><th>verdict</th><th>statistic</th><th>p-value</th>"
            f"<th>threshold</th><th>message</th></tr>{rows}</table>"
        )
        for name, diagnostic in result.diagnostics.items():
            parts.append(f"<h3>{_escape(name)}: {_verdict(diagnostic.passed)}</h3>")
            if diagnostic.summary:
                parts.append(_key_value_table(diagnostic.summary))
            parts.append(_figure_html(diagnostic.plot, f"diagnostic {name}", dpi))
    else:
        parts.append("<p>No diagnostics were run.</p>")

    parts += ['<h2 id="versions">Versions</h2>', _key_value_table(provenance.get("versions", {}))]
    body = "\n".join(parts)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_escape(title)}</title><style>{_STYLE}</style></head>\n"
        f"<body>\n{body}\n</body></html>\n"
    )


def write_html(result: StudyResult, path: str | os.PathLike[str], **options: Any) -> Path:
    """Write :func:`render_html` to ``path`` atomically; ``options`` go to it."""
    return atomic_write_text(Path(path), render_html(result, **options))
