"""``sbiplug run study.toml`` and ``sbiplug report DIR``: studies from a TOML file.

A study file (all keys but the simulator optional)::

    seed = 0
    num_simulations = 10000                       # also num_posterior_samples, ...
    diagnostics = ["sbc", "c2st_reference"]      # or a table: [diagnostics.sbc] num_sbc_runs = 200

    [simulator]                                   # or simulator = "two_moons"
    name = "two_moons"

    [estimator]                                   # or estimator = "npe"
    name = "npe"
    options = { density_estimator = "nsf" }       # factory options; also train = {...}

    [observations]                                # at most one of the first two
    values = [[0.1, 0.2]]                         # observed data, one row per observation
    true_parameters = [[0.0, 0.5]]                # simulate the observations from these
    num_observations = 1                          # else: draw this many from the prior

    [simulation]                                  # chunk_size, num_workers, address (dask)
    executor = "local"                            # "local", "joblib" or "dask"

Every key: docs/guide/cli.md. Errors name the key and what was expected, without a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import math
import sys
import tomllib
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sbiplug.errors import UserError
from sbiplug.report import format_report, write_report
from sbiplug.run_folder import check_run_folder, move_aside

__all__ = ["StudyConfig", "format_report", "load_study_config", "register"]

RESULT_FOLDER = "result"
SIMULATION_FOLDER = "simulations"
MINIMAL_STUDY = 'simulator = "two_moons"'


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


def _ragged_matrix(source: str, key: str, value: Any) -> list[list[float]]:
    """Like :func:`_matrix`, but rows may differ in length (sets of different sizes)."""
    rows = value if isinstance(value, list) and value and isinstance(value[0], list) else [value]
    for row in rows:
        _matrix(source, key, row)
    return rows


def _matrix(source: str, key: str, value: Any) -> list[list[float]]:
    rows = value if isinstance(value, list) and value and isinstance(value[0], list) else [value]
    for row in rows:
        if (
            not isinstance(row, list)
            or not row
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in row)
        ):
            raise _fail(source, key, "an array of numbers or an array of such arrays", value)
        if len(row) != len(rows[0]):
            raise _fail(source, key, f"rows of equal length ({len(rows[0])})", value)
        if not all(math.isfinite(v) for v in row):  # TOML spells nan and inf
            raise _fail(source, key, "finite numbers (no nan or inf)", value)
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
            close = difflib.get_close_matches(name, list(fields), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise UserError(
                f"{source}: unknown key {full!r}; expected one of: {', '.join(fields)}{hint}"
            )
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
        {"values": _ragged_matrix, "true_parameters": _matrix, "num_observations": _integer(1)},
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
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"study file {source!r} does not exist") from None
    except IsADirectoryError:
        raise UserError(f"study file {source!r} is a folder, not a TOML file") from None
    except PermissionError:
        raise UserError(f"study file {source!r} cannot be read (permission denied)") from None
    except UnicodeDecodeError:
        raise UserError(f"{source}: not a TOML file (not UTF-8 text)") from None
    except tomllib.TOMLDecodeError as error:
        raise UserError(f"{source}: not valid TOML: {error}") from None
    if not document:
        raise UserError(
            f"{source}: the study file is empty; the smallest valid study file is the line "
            f"{MINIMAL_STUDY!r} ('sbiplug list simulators' shows the names)"
        )
    config = StudyConfig(source, _section(source, "", document, SCHEMA))
    if "simulator" not in config.values:
        raise UserError(
            f"{source}: key 'simulator' is missing: name the simulator to study, e.g. "
            f"{MINIMAL_STUDY!r} ('sbiplug list simulators' shows the names)"
        )
    return config


# -- commands ---------------------------------------------------------------------------------


@contextlib.contextmanager
def _library_warnings_hidden(verbose: bool) -> Iterator[None]:
    """Show sbiplug's own warnings (invalid simulations, skipped plugins); hide the libraries'
    advice (convergence, deprecations) unless ``--verbose``. sbiplug's log records go to
    stderr (INFO ones too with ``--verbose``)."""
    from sbiplug.console import cli_logging
    from sbiplug.errors import SbiplugPluginWarning
    from sbiplug.simulation import CorruptChunkWarning, InvalidSimulationWarning
    from sbiplug.study_inputs import SmallBudgetWarning

    with warnings.catch_warnings(), cli_logging(verbose):
        if not verbose:
            warnings.simplefilter("ignore")
            warnings.simplefilter("default", SmallBudgetWarning)
            warnings.simplefilter("default", InvalidSimulationWarning)
            warnings.simplefilter("default", CorruptChunkWarning)
            warnings.simplefilter("default", SbiplugPluginWarning)
        yield


def _cmd_run(args: argparse.Namespace) -> int:
    from sbiplug.simulation import SimulationFolderError
    from sbiplug.simulator import SimulatorOutputError
    from sbiplug.study import StudyError

    config = load_study_config(args.study)
    out = Path(args.out) if args.out else Path(Path(args.study).stem + "-output")
    check_run_folder(out, resume=args.resume, overwrite=args.overwrite)
    try:
        with _library_warnings_hidden(args.verbose):
            study = config.build(folder=out, show_progress_bars=False if args.quiet else None)
            moved = move_aside(out) if args.overwrite else None
            if moved is not None:
                print(f"sbiplug: moved the previous work in {out} to {moved}", file=sys.stderr)
            result = study.run(**config.run_options())
    except SimulationFolderError as error:
        raise UserError(
            f"{config.source}: cannot resume: {error}, or pass --overwrite to move it aside"
        ) from None
    except (StudyError, SimulatorOutputError) as error:
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
    if args.html:
        from sbiplug.html_report import HTML_FILE, write_html

        with _library_warnings_hidden(verbose=False):
            print(f"html: {write_html(result, out / HTML_FILE)}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``run`` and ``report`` to the ``sbiplug`` command."""
    run = subparsers.add_parser("run", help="run a study from a TOML file")
    run.add_argument("study", help="the study file (TOML)")
    run.add_argument("--out", help="output folder (default: <study>-output)")
    run.add_argument(
        "--resume",
        action="store_true",
        help="continue the finished work in --out (refused unless its settings match)",
    )
    run.add_argument(
        "--overwrite",
        action="store_true",
        help="move the finished work in --out aside to <out>.old-<timestamp>, then start afresh",
    )
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    run.add_argument("--verbose", action="store_true", help="show the libraries' warnings too")
    run.set_defaults(func=_cmd_run)

    report = subparsers.add_parser("report", help="summarise a study result and draw its figures")
    report.add_argument("folder", help="a folder written by 'sbiplug run' (or its result/)")
    report.add_argument("--figures", help="where to write summary and figures (default: folder)")
    report.add_argument(
        "--html", action="store_true", help="also write report.html, one self-contained page"
    )
    report.set_defaults(func=_cmd_report)
