"""Property-based fuzzing of ``sbiplug run`` and ``sbiplug report`` with malformed input.

Each generated case takes a valid study file and breaks one thing: an unknown key (at the top,
in a section or among the options of the simulator, the estimator, ``train()``,
``build_posterior()`` or a diagnostic), a value of the wrong type or range (NaN and inf
included), a missing key, observations or true parameters of the wrong shape, non-finite or
outside the prior, an unknown name. ``sbiplug run`` must answer with status 2 and one line on
stderr naming the key, before any simulation: the training-set simulation is replaced by a
tripwire, so a case that slips through validation fails loudly instead of running. Corrupted
``result.nc`` files (truncated, random bytes, missing groups or attributes) must make
``sbiplug report`` answer "not a sbiplug result" in one line with status 2.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import json
import math
import os
import re
import string
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import xarray as xr
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import sbiplug
from sbiplug import study as study_module
from sbiplug.cli import main

EXAMPLES_PER_FIELD = 10  # x 24 fields
EXAMPLES_PER_TABLE = 8  # x 10 tables, x 8 observation cases, x 3 missing keys and names
NUM_REPORT_CASES = 60
FUZZ = settings(
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

# -- a valid study and what its tables accept ------------------------------------------------


def base_study(simulator: str) -> dict[str, Any]:
    """A valid study (never run here): 2 parameters, 2-D data."""
    options = {"dim": 2} if simulator == "gaussian_linear" else {}
    return {
        "seed": 0,
        "num_simulations": 1000,
        "num_posterior_samples": 100,
        "num_predictive_draws": 0,
        "show_progress_bars": False,
        "simulator": {"name": simulator, "options": options},
        "estimator": {
            "name": "npe",
            "options": {"hidden_features": 16},
            "train": {"max_num_epochs": 5},
            "posterior": {},
        },
        "diagnostics": {"sbc": {"c2st": False}},
        "simulation": {"chunk_size": 500},
        "observations": {"num_observations": 1},
    }


def _parameters(function: Any) -> set[str]:
    return set(inspect.signature(function).parameters) - {"self", "prior"}


def _known_keys() -> dict[tuple[str, ...], set[str]]:
    from sbi.inference import NPE

    from sbiplug.study_cli import SCHEMA

    return {
        (): set(SCHEMA),
        ("simulator",): {"name", "options"},
        ("estimator",): {"name", "options", "train", "posterior"},
        ("simulation",): {"chunk_size", "executor", "num_workers", "address"},
        ("observations",): {"values", "true_parameters", "num_observations"},
        ("simulator", "options"): {"dim"},
        ("estimator", "options"): _parameters(sbiplug.estimators()["npe"].load()),
        ("estimator", "train"): _parameters(NPE.train),
        ("estimator", "posterior"): _parameters(NPE.build_posterior),
        ("diagnostics", "sbc"): _parameters(sbiplug.diagnostics()["sbc"].load()),
    }


KNOWN = _known_keys()
SAMPLE_WITH = ("mcmc", "rejection", "vi", "importance", "direct")

# (path, kind): a key of the valid study and the values it accepts
FIELDS: list[tuple[tuple[str, ...], str]] = [
    (("seed",), "non_negative_int"),
    (("num_simulations",), "int_at_least_2"),
    (("num_posterior_samples",), "positive_int"),
    (("num_predictive_draws",), "non_negative_int"),
    (("show_progress_bars",), "bool"),
    (("simulator", "options", "dim"), "positive_int"),
    (("estimator", "options", "hidden_features"), "positive_int"),
    (("estimator", "options", "num_transforms"), "positive_int"),
    (("estimator", "options", "show_progress_bars"), "bool"),
    (("estimator", "train", "max_num_epochs"), "positive_int"),
    (("estimator", "train", "training_batch_size"), "positive_int"),
    (("estimator", "train", "stop_after_epochs"), "positive_int"),
    (("estimator", "train", "learning_rate"), "positive_float"),
    (("estimator", "train", "validation_fraction"), "fraction"),
    (("estimator", "train", "show_train_summary"), "bool"),
    (("estimator", "posterior", "sample_with"), "sample_with"),
    (("simulation", "chunk_size"), "positive_int"),
    (("simulation", "num_workers"), "positive_int"),
    (("simulation", "executor"), "executor"),
    (("observations", "num_observations"), "positive_int"),
    (("diagnostics", "sbc", "num_sbc_runs"), "int_at_least_2"),
    (("diagnostics", "sbc", "num_posterior_samples"), "positive_int"),
    (("diagnostics", "sbc", "alpha"), "fraction"),
    (("diagnostics", "sbc", "c2st"), "bool"),
]

# -- strategies -------------------------------------------------------------------------------

names = st.from_regex(r"[a-z][a-z0-9_]{0,11}", fullmatch=True)
words = st.text(alphabet=string.ascii_letters + string.digits + " _-.,:", max_size=10)
any_float = st.floats(allow_nan=True, allow_infinity=True)
non_finite = st.sampled_from([math.nan, math.inf, -math.inf])
others = st.one_of(words, st.lists(st.integers(-5, 5), max_size=3), st.just({"a": 1}))


def _wrong_ints(below: int) -> st.SearchStrategy[Any]:
    return st.one_of(st.integers(max_value=below - 1), any_float, st.booleans(), others)


WRONG: dict[str, st.SearchStrategy[Any]] = {
    "positive_int": _wrong_ints(1),
    "non_negative_int": _wrong_ints(0),
    "int_at_least_2": _wrong_ints(2),
    "bool": st.one_of(st.integers(), any_float, others),
    "positive_float": st.one_of(
        st.floats(max_value=0.0), st.integers(max_value=0), non_finite, st.booleans(), others
    ),
    "fraction": st.one_of(
        any_float.filter(lambda v: not 0.0 < v < 1.0), st.integers(), st.booleans(), others
    ),
    "sample_with": st.one_of(words.filter(lambda v: v not in SAMPLE_WITH), st.integers()),
    "executor": st.one_of(words.filter(lambda v: v not in ("local", "joblib", "dask")), others),
}
finite = st.floats(-0.9, 0.9)
SIMULATORS = ("gaussian_linear", "two_moons")
OBSERVATION_CASES = (
    "width",
    "ragged",
    "non_finite",
    "truth_width",
    "truth_non_finite",
    "outside",
    "empty",
    "both",
)


@st.composite
def unknown_key(draw: st.DrawFn, path: tuple[str, ...] | None = None) -> tuple[dict, str]:
    study = base_study(draw(st.sampled_from(["gaussian_linear", "two_moons"])))
    path = path if path is not None else draw(st.sampled_from(sorted(KNOWN)))
    if path == ("simulator", "options") and study["simulator"]["name"] == "two_moons":
        known: set[str] = set()  # two_moons takes no options at all
    else:
        known = KNOWN[path]
    key = draw(names.filter(lambda name: name not in known))
    event(f"unknown key in {'.'.join(path) or 'the top level'}")
    table = study
    for part in path:
        table = table[part]
    table[key] = draw(st.one_of(st.integers(0, 9), words, st.booleans()))
    return study, key


@st.composite
def wrong_value(draw: st.DrawFn, field: tuple | None = None) -> tuple[dict[str, Any], str]:
    path, kind = field if field is not None else draw(st.sampled_from(FIELDS))
    event(f"wrong {'.'.join(path)}")
    study = base_study("gaussian_linear")
    table = study
    for part in path[:-1]:
        table = table[part]
    table[path[-1]] = draw(WRONG[kind])
    return study, path[-1]


@st.composite
def missing_key(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    study = base_study(draw(st.sampled_from(["gaussian_linear", "two_moons"])))
    which = draw(st.sampled_from(["simulator", "simulator.name", "estimator.name"]))
    event(f"missing {which}")
    if which == "simulator":
        del study["simulator"]
    else:
        section = which.split(".")[0]
        del study[section]["name"]
    return study, which


@st.composite
def bad_observations(draw: st.DrawFn, case: str | None = None) -> tuple[dict[str, Any], str]:
    case = case if case is not None else draw(st.sampled_from(OBSERVATION_CASES))
    simulator = "two_moons" if case == "outside" else draw(st.sampled_from(SIMULATORS))
    study = base_study(simulator)
    rows = draw(st.integers(1, 3))
    good = draw(st.lists(st.lists(finite, min_size=2, max_size=2), min_size=rows, max_size=rows))
    event(f"observations: {case}")
    key, needle = "values", "observations"
    if case == "width":
        width = draw(st.sampled_from([1, 3, 4, 5]))
        value: Any = draw(st.lists(st.lists(finite, min_size=width, max_size=width), min_size=1))
    elif case == "ragged":
        value = [
            *good,
            draw(st.lists(finite, min_size=1, max_size=4).filter(lambda r: len(r) != 2)),
        ]
    elif case == "non_finite":
        row, column = draw(st.integers(0, rows - 1)), draw(st.integers(0, 1))
        value = [list(r) for r in good]
        value[row][column] = draw(non_finite)
    elif case == "truth_width":
        key, needle = "true_parameters", "true_parameters"
        value = [draw(st.lists(finite, min_size=3, max_size=4))]
    elif case == "truth_non_finite":
        key, needle = "true_parameters", "true_parameters"
        value = [[draw(non_finite), 0.0]]
    elif case == "outside":
        key, needle = "true_parameters", "true_parameters"
        outside = draw(st.floats(1.01, 1e6) | st.floats(-1e6, -1.01))
        value = [[outside, 0.0]] if draw(st.booleans()) else [[0.0, outside]]
    elif case == "empty":
        value = []
    else:  # values and num_observations exclude each other
        value, needle = good, "num_observations"
        study["observations"]["num_observations"] = rows
    if key == "values" and case != "both":
        del study["observations"]["num_observations"]
    if key == "true_parameters":
        del study["observations"]["num_observations"]
    study["observations"][key] = value
    return study, needle


@st.composite
def unknown_name(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    study = base_study("gaussian_linear")
    kind = draw(st.sampled_from(["simulator", "estimator", "diagnostic"]))
    registered = {
        "simulator": sbiplug.simulators(),
        "estimator": sbiplug.estimators(),
        "diagnostic": sbiplug.diagnostics(),
    }[kind]
    name = draw(names.filter(lambda n: n not in registered))
    event(f"unknown {kind} name")
    if kind == "diagnostic":
        study["diagnostics"] = ["sbc", name]
    else:
        study[kind]["name"] = name
        study[kind].pop("options", None)
        study["estimator"].pop("train", None)
    return study, name


broken_studies = st.one_of(
    unknown_key(), wrong_value(), missing_key(), bad_observations(), unknown_name()
)

# -- TOML -------------------------------------------------------------------------------------


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value))


def to_toml(study: dict[str, Any]) -> str:
    scalars = [f"{k} = {toml_value(v)}" for k, v in study.items() if not isinstance(v, dict)]
    tables = [
        f"[{k}]\n" + "".join(f"{key} = {toml_value(item)}\n" for key, item in v.items())
        for k, v in study.items()
        if isinstance(v, dict)
    ]
    return "\n".join(scalars) + "\n\n" + "\n".join(tables)


# -- running ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module", autouse=True)
def tripwire():
    """Training-set simulation is the first long work: reaching it means validation missed."""

    def tripped(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("long work started: the study passed validation")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(study_module, "simulate_training_set", tripped)
        yield


def run_in_process(*argv: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, err.getvalue()


def assert_one_line_naming(code: int, err: str, needle: str, text: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2, f"status {code} for\n{text}\n{err}"
    assert len(lines) == 1 and lines[0].startswith("sbiplug"), f"for\n{text}\n{err}"
    assert needle in lines[0], f"{needle!r} not named for\n{text}\n{err}"


def _write(workspace: Path, text: str) -> tuple[Path, Path]:
    folder = Path(tempfile.mkdtemp(dir=workspace))
    path = folder / "study.toml"
    path.write_text(text)
    return path, folder / "out"


def check_run(workspace: Path, case: tuple[dict[str, Any], str]) -> None:
    study, needle = case
    text = to_toml(study)
    path, out = _write(workspace, text)
    code, err = run_in_process("run", str(path), "--out", str(out), "--quiet")
    assert_one_line_naming(code, err, needle, text)
    assert not (out / "simulations").exists()


@pytest.mark.parametrize("field", FIELDS, ids=lambda field: ".".join(field[0]))
@settings(FUZZ, max_examples=EXAMPLES_PER_FIELD)
@given(data=st.data())
def test_a_wrong_value_is_named(workspace, field, data):
    check_run(workspace, data.draw(wrong_value(field)))


@pytest.mark.parametrize("path", sorted(KNOWN), ids=lambda path: ".".join(path) or "top")
@settings(FUZZ, max_examples=EXAMPLES_PER_TABLE)
@given(data=st.data())
def test_an_unknown_key_is_named(workspace, path, data):
    check_run(workspace, data.draw(unknown_key(path)))


@pytest.mark.parametrize("case", OBSERVATION_CASES)
@settings(FUZZ, max_examples=EXAMPLES_PER_TABLE)
@given(data=st.data())
def test_bad_observations_are_named(workspace, case, data):
    check_run(workspace, data.draw(bad_observations(case)))


@settings(FUZZ, max_examples=EXAMPLES_PER_TABLE * 3)
@given(case=st.one_of(missing_key(), unknown_name()))
def test_missing_keys_and_unknown_names_are_named(workspace, case):
    check_run(workspace, case)


def test_the_base_studies_are_valid(workspace):
    """The tripwire proves the unbroken study reaches simulation: the cases break one thing."""
    for simulator in ("gaussian_linear", "two_moons"):
        path, out = _write(workspace, to_toml(base_study(simulator)))
        code, err = run_in_process("run", str(path), "--out", str(out), "--quiet")
        assert code == 1 and "long work started" in err


@settings(FUZZ, max_examples=3)
@given(case=broken_studies)
def test_malformed_study_files_in_a_real_subprocess(workspace, case):
    study, needle = case
    text = to_toml(study)
    path, out = _write(workspace, text)
    result = subprocess.run(
        [sys.executable, "-m", "sbiplug", "run", str(path), "--out", str(out), "--quiet"],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=120,  # a case that slipped through would train for longer than this
    )
    assert_one_line_naming(result.returncode, result.stderr, needle, text)


# -- corrupted results ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def result_bytes(workspace) -> bytes:
    """A real result file, written by ``StudyResult.save`` from a tiny study."""
    from sbiplug.simulation import simulate_training_set

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(study_module, "simulate_training_set", simulate_training_set)
        study = sbiplug.Study(
            "gaussian_linear",
            "npe",
            num_simulations=200,
            simulator_options={"dim": 2},
            train_options={"max_num_epochs": 1},
            show_progress_bars=False,
        )
        result = study.run(num_posterior_samples=20, num_predictive_draws=0)
    folder = result.save(workspace / "intact")
    return (Path(folder) / "result.nc").read_bytes()


@st.composite
def corrupted(draw: st.DrawFn, intact: bytes) -> tuple[str, Any]:
    how = draw(st.sampled_from(["truncate", "random", "header", "groups", "attributes"]))
    if how == "truncate":
        return how, draw(st.integers(0, len(intact) - 1))
    if how == "random":
        return how, draw(st.binary(max_size=4096))
    if how == "header":
        return how, draw(st.binary(min_size=8, max_size=8).filter(lambda b: b != intact[:8]))
    if how == "groups":
        return how, draw(st.sets(st.sampled_from(["posterior", "observed_data"]), min_size=1))
    chosen = st.sampled_from(["provenance", "parameter_names", "created_by"])
    return how, draw(st.sets(chosen, min_size=1))


def _write_corrupted(folder: Path, intact: bytes, how: str, what: Any) -> None:
    target = folder / "result.nc"
    if how == "truncate":
        target.write_bytes(intact[:what])
    elif how == "random":
        target.write_bytes(what)
    elif how == "header":
        target.write_bytes(what + intact[8:])
    else:
        source = folder / "intact.nc"
        source.write_bytes(intact)
        with xr.open_datatree(source) as tree:
            nodes = tree.load().to_dict()
        source.unlink()
        if how == "groups":
            nodes = {
                path: node
                for path, node in nodes.items()
                if not any(path == f"/{g}" or path.startswith(f"/{g}/") for g in what)
            }
        else:
            for name in what:
                del nodes["/"].attrs[name]
        xr.DataTree.from_dict(nodes).to_netcdf(target)


def test_corrupted_results_fail_in_one_line(workspace, result_bytes):
    @settings(FUZZ, max_examples=NUM_REPORT_CASES)
    @given(case=corrupted(result_bytes))
    def check(case):
        how, what = case
        folder = Path(tempfile.mkdtemp(dir=workspace))
        _write_corrupted(folder, result_bytes, how, what)
        code, err = run_in_process("report", str(folder))
        described = f"{how} {what!r}"[:200]
        assert_one_line_naming(code, err, "not a sbiplug result", described)
        assert re.search(r"result\.nc", err)

    check()
