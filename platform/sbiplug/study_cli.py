"""``sbiplug run study.toml`` and ``sbiplug report DIR``: studies from a TOML file.

A study file (all keys but the simulator optional)::

    seed = 0
    num_simulations = 10000
    num_posterior_samples = 1000
    num_predictive_draws = 100
    show_progress_bars = true
    diagnostics = ["sbc", "c2st_reference"]      # or a table: [diagnostics.sbc] num_sbc_runs = 200

    [simulator]                                   # or simulator = "two_moons"
    name = "two_moons"
    options = {}

    [estimator]                                   # or estimator = "npe"
    name = "npe"
    options = { density_estimator = "nsf" }       # factory options
    train = { max_num_epochs = 100 }              # trainer.train(...)
    posterior = {}                                # trainer.build_posterior(...)

    [observations]                                # at most one of the first two
    values = [[0.1, 0.2]]                         # observed data, one row per observation
    true_parameters = [[0.0, 0.5]]                # simulate the observations from these
    num_observations = 1                          # else: draw this many from the prior

    [simulation]
    chunk_size = 1000
    executor = "local"                            # "local", "joblib" or "dask"
    num_workers = 1
    address = "tcp://scheduler:8786"              # dask only; default: a local cluster

Errors name the key and what was expected, and print without a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import tomllib
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sbiplug.errors import UserError
from sbiplug.toolkit.atomic import atomic_write_text

__all__ = ["StudyConfig", "format_report", "load_study_config", "register"]

RESULT_FOLDER = "result"
SIMULATION_FOLDER = "simulations"
FIGURE_FOLDER = "figures"
SUMMARY_FILE = "summary.txt"


# -- validation of the TOML document ----------------------------------------------------------


def _kind(value: Any) -> str:
    return {dict: "table", list: "array", str: "string", bool: "boolean"}.get(
        type(value), type(value).__name__
    )


def _fail(source: str, key: str, expected: str, value: Any) -> UserError:
    return UserError(f"{source}: key {key!r} must be {expected}, got {value!r} ({_kind(value)})")


def _integer(minimum: int) -> Callable[[str, str, Any], Any]:
    def check(source: str, key: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
            raise _fail(source, key, what, value)
        return value

    return check


def _string(source: str, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise _fail(source, key, "a non-empty string", value)
    return value


def _boolean(source: str, key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _fail(source, key, "true or false", value)
    return value


def _table(source: str, key: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(source, key, "a table", value)
    return value


def _matrix(source: str, key: str, value: Any) -> list[list[float]]:
    rows = value if isinstance(value, list) and value and isinstance(value[0], list) else [value]
    for row in rows:
        if (
            not isinstance(row, list)
            or not row
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in row)
        ):
            raise _fail(source, key, "an array of numbers or an array of such arrays", value)
    return rows


def _choice(*choices: str) -> Callable[[str, str, Any], str]:
    def check(source: str, key: str, value: Any) -> str:
        if value not in choices:
            raise _fail(source, key, f"one of {', '.join(map(repr, choices))}", value)
        return value

    return check


def _named(fields: Mapping[str, Callable[[str, str, Any], Any]]):
    """A table with a ``name``, or a bare string standing for ``{name = ...}``."""

    def check(source: str, key: str, value: Any) -> dict[str, Any]:
        if isinstance(value, str):
            value = {"name": value}
        table = _section(source, key, value, fields)
        if "name" not in table:
            raise UserError(f"{source}: key {key + '.name'!r} is missing (a registered name)")
        return table

    return check


def _diagnostics(source: str, key: str, value: Any) -> dict[str, dict[str, Any]]:
    if isinstance(value, list):
        for item in value:
            _string(source, key, item)
        return {name: {} for name in value}
    table = _table(source, key, value)
    return {name: _table(source, f"{key}.{name}", options) for name, options in table.items()}


def _section(
    source: str, key: str, value: Any, fields: Mapping[str, Callable[[str, str, Any], Any]]
) -> dict[str, Any]:
    table = _table(source, key, value) if key else value
    checked = {}
    for name, item in table.items():
        full = f"{key}.{name}" if key else name
        if name not in fields:
            raise UserError(f"{source}: unknown key {full!r}; expected one of: {', '.join(fields)}")
        checked[name] = fields[name](source, full, item)
    return checked


SCHEMA: dict[str, Callable[[str, str, Any], Any]] = {
    "seed": _integer(0),
    "num_simulations": _integer(2),
    "num_posterior_samples": _integer(1),
    "num_predictive_draws": _integer(0),
    "show_progress_bars": _boolean,
    "simulator": _named({"name": _string, "options": _table}),
    "estimator": _named({"name": _string, "options": _table, "train": _table, "posterior": _table}),
    "diagnostics": _diagnostics,
    "observations": lambda source, key, value: _section(
        source,
        key,
        value,
        {"values": _matrix, "true_parameters": _matrix, "num_observations": _integer(1)},
    ),
    "simulation": lambda source, key, value: _section(
        source,
        key,
        value,
        {
            "chunk_size": _integer(1),
            "executor": _choice("local", "joblib", "dask"),
            "num_workers": _integer(1),
            "address": _string,
        },
    ),
}


@dataclass
class StudyConfig:
    """A validated study file."""

    source: str
    values: dict[str, Any] = field(default_factory=dict)

    def build(self, folder: Path | None = None, show_progress_bars: bool | None = None) -> Any:
        """The :class:`~sbiplug.Study` this file describes, checkpointing into ``folder``."""
        from sbiplug.simulation import SimulationOptions
        from sbiplug.study import Study

        values = self.values
        simulator = values.get("simulator", {"name": "two_moons"})
        estimator = values.get("estimator", {"name": "npe"})
        simulation = dict(values.get("simulation", {}))
        address = simulation.pop("address", None)
        if address is not None and simulation.get("executor", "dask") != "dask":
            raise UserError(f"{self.source}: key 'simulation.address' needs executor = \"dask\"")
        if address is not None:
            simulation["executor"] = "dask"
        progress = values.get("show_progress_bars", True)
        if show_progress_bars is not None:
            progress = show_progress_bars
        return Study(
            simulator["name"],
            estimator["name"],
            num_simulations=values.get("num_simulations", 1000),
            diagnostics=values.get("diagnostics", {}),
            seed=values.get("seed", 0),
            simulator_options=simulator.get("options"),
            estimator_options=estimator.get("options"),
            train_options=estimator.get("train"),
            posterior_options=estimator.get("posterior"),
            simulation=SimulationOptions(**simulation, client=address, show_progress_bars=progress),
            folder=folder,
            show_progress_bars=progress,
        )

    def run_options(self) -> dict[str, Any]:
        """Keyword arguments of :meth:`~sbiplug.Study.run`."""
        observations = self.values.get("observations", {})
        if "values" in observations and "num_observations" in observations:
            raise UserError(
                f"{self.source}: keys 'observations.values' and 'observations.num_observations' "
                "exclude each other"
            )
        if "true_parameters" in observations and "num_observations" in observations:
            raise UserError(
                f"{self.source}: keys 'observations.true_parameters' and "
                "'observations.num_observations' exclude each other"
            )
        return {
            "observations": observations.get("values"),
            "true_parameters": observations.get("true_parameters"),
            "num_observations": observations.get("num_observations", 1),
            "num_posterior_samples": self.values.get("num_posterior_samples", 1000),
            "num_predictive_draws": self.values.get("num_predictive_draws", 100),
        }


def load_study_config(path: str | Path) -> StudyConfig:
    """Read and check a study file; every problem raises :class:`~sbiplug.errors.UserError`."""
    path = Path(path)
    source = str(path)
    try:
        document = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"study file {source!r} does not exist") from None
    except tomllib.TOMLDecodeError as error:
        raise UserError(f"{source}: not valid TOML: {error}") from None
    return StudyConfig(source, _section(source, "", document, SCHEMA))


# -- reporting --------------------------------------------------------------------------------


def format_report(result: Any, max_observations: int = 3) -> str:
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
        lines += ["", f"posterior of observation {index}:", result.summary(index).to_string()]
    if num_observations > max_observations:
        lines.append(f"... and {num_observations - max_observations} more observations")
    if result.diagnostics:
        lines += ["", "diagnostics:"]
        for name, diagnostic in result.diagnostics.items():
            verdict = {True: "passed", False: "FAILED", None: "-"}[diagnostic.passed]
            lines.append(f"  {name:<16} {verdict:<7} {diagnostic.message}")
    return "\n".join(lines) + "\n"


def write_report(result: Any, folder: Path) -> tuple[Path, list[Path]]:
    """Write ``summary.txt`` and the PNG figures into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    summary = atomic_write_text(folder / SUMMARY_FILE, format_report(result))
    figures = result.save_figures(folder / FIGURE_FOLDER)
    return summary, figures


# -- commands ---------------------------------------------------------------------------------


@contextlib.contextmanager
def _library_warnings_hidden(verbose: bool) -> Iterator[None]:
    """Show sbiplug's own warnings (invalid simulations, skipped plugins); hide the libraries'
    advice (convergence, deprecations) unless ``--verbose``."""
    from sbiplug.errors import SbiplugPluginWarning
    from sbiplug.simulation import InvalidSimulationWarning

    with warnings.catch_warnings():
        if not verbose:
            warnings.simplefilter("ignore")
            warnings.simplefilter("default", InvalidSimulationWarning)
            warnings.simplefilter("default", SbiplugPluginWarning)
        yield


def _cmd_run(args: argparse.Namespace) -> int:
    from sbiplug.simulation import SimulationFolderError
    from sbiplug.simulator import SimulatorOutputError
    from sbiplug.study import StudyError

    config = load_study_config(args.study)
    out = Path(args.out) if args.out else Path(Path(args.study).stem + "-output")
    simulations = out / SIMULATION_FOLDER
    if simulations.exists() and not args.resume:
        shutil.rmtree(simulations)  # a fresh run; --resume keeps the finished chunks
    try:
        with _library_warnings_hidden(args.verbose):
            study = config.build(folder=out, show_progress_bars=False if args.quiet else None)
            result = study.run(**config.run_options())
    except (StudyError, SimulationFolderError, SimulatorOutputError) as error:
        raise UserError(f"{config.source}: {error}") from None
    result.save(out / RESULT_FOLDER)
    summary, figures = write_report(result, out)
    print(summary.read_text(), end="")
    print(f"\nresult: {out / RESULT_FOLDER}  (netCDF: {out / RESULT_FOLDER / 'result.nc'})")
    print(f"summary: {summary}")
    print("figures: " + ", ".join(str(path) for path in figures))
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from sbiplug.results import RESULT_FILE, StudyResult

    folder = Path(args.folder)
    result_folder = (
        folder / RESULT_FOLDER if (folder / RESULT_FOLDER / RESULT_FILE).exists() else folder
    )
    if not (result_folder / RESULT_FILE).exists():
        raise UserError(
            f"{str(folder)!r} holds no study result "
            f"(expected {RESULT_FILE} in it or in {RESULT_FOLDER}/)"
        )
    result = StudyResult.load(result_folder, load_estimator=False)
    out = Path(args.figures) if args.figures else folder
    with _library_warnings_hidden(verbose=False):
        summary, figures = write_report(result, out)
    print(summary.read_text(), end="")
    print("\nfigures: " + ", ".join(str(path) for path in figures))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``run`` and ``report`` to the ``sbiplug`` command."""
    run = subparsers.add_parser("run", help="run a study from a TOML file")
    run.add_argument("study", help="the study file (TOML)")
    run.add_argument("--out", help="output folder (default: <study>-output)")
    run.add_argument(
        "--resume", action="store_true", help="reuse the finished simulation chunks in --out"
    )
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    run.add_argument("--verbose", action="store_true", help="show the libraries' warnings too")
    run.set_defaults(func=_cmd_run)

    report = subparsers.add_parser("report", help="summarise a study result and draw its figures")
    report.add_argument("folder", help="a folder written by 'sbiplug run' (or its result/)")
    report.add_argument("--figures", help="where to write summary and figures (default: folder)")
    report.set_defaults(func=_cmd_report)
