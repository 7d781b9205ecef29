"""Every user error of ``sbiplug`` is one line on stderr with status 2; bugs keep a traceback."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from sbiplug import study_cli
from sbiplug.cli import main

TINY = """\
seed = 0
num_simulations = 200
num_posterior_samples = 20
num_predictive_draws = 0
show_progress_bars = false

[simulator]
name = "gaussian_linear"
options = { dim = 2 }

[estimator]
name = "npe"
train = { max_num_epochs = 1 }
"""


def run_cli(*argv: str) -> tuple[int, str, str]:
    """``main(argv)`` in this process: (status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def assert_user_error(code: int, err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("sbiplug"), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


@pytest.fixture(scope="module")
def result_file(tmp_path_factory) -> Path:
    """A real, small ``result.nc`` written by ``sbiplug run``."""
    folder = tmp_path_factory.mktemp("cli_errors")
    study = folder / "tiny.toml"
    study.write_text(TINY)
    code, _, err = run_cli("run", str(study), "--out", str(folder / "out"), "--quiet")
    assert code == 0, err
    return folder / "out" / "result" / "result.nc"


@pytest.mark.parametrize(
    ("replace", "by", "needles"),
    [
        ("{ dim = 2 }", "{ dimm = 2 }", ("unknown option 'dimm'", "did you mean 'dim'?")),
        ("{ dim = 2 }", "{ dim = -4 }", ("dim must be a positive int, got -4",)),
        (
            "train = { max_num_epochs = 1 }",
            'options = { hidden_features = "wide" }',
            ("hidden_features must be a positive int or None, got 'wide'",),
        ),
        (
            "train = { max_num_epochs = 1 }",
            "options = { hidden_features = -4 }",
            ("hidden_features must be a positive int, got -4",),
        ),
        (
            "max_num_epochs = 1",
            'learning_rate = "fast"',
            ("train()", "learning_rate must be a positive finite number, got 'fast'"),
        ),
        ("max_num_epochs = 1", "max_num_epochs = -1", ("max_num_epochs must be a positive int",)),
        ("max_num_epochs = 1", "learning_rate = nan", ("learning_rate must be", "got nan")),
        (
            'name = "npe"',
            'name = "npe"\nposterior = { sample_with = "mcm" }',
            ("sample_with must be one of 'mcmc'",),
        ),
        (
            "train = { max_num_epochs = 1 }",
            "train = { max_num_epochs = 1 }\n[observations]\nvalues = [[0.1, nan]]",
            ("'observations.values' must be finite",),
        ),
        (
            "train = { max_num_epochs = 1 }",
            "train = { max_num_epochs = 1 }\n[observations]\nvalues = [[0.1, 0.2], [0.3]]",
            ("observations must be rows of equal length",),
        ),
        (
            "train = { max_num_epochs = 1 }",
            "train = { max_num_epochs = 1 }\n[observations]\nvalues = [[0.1, 0.2, 0.3]]",
            ("observations must have shape (n, 2)",),
        ),
        ("num_simulations = 200", "num_simulation = 200", ("did you mean 'num_simulations'?",)),
    ],
)
def test_bad_study_files_are_one_line_and_status_2(tmp_path, replace, by, needles):
    assert replace in TINY
    path = tmp_path / "study.toml"
    path.write_text(TINY.replace(replace, by, 1))
    code, _, err = run_cli("run", str(path), "--out", str(tmp_path / "out"), "--quiet")
    assert_user_error(code, err, "study.toml", *needles)
    assert not (tmp_path / "out" / "simulations").exists()  # refused before any simulation


def test_true_parameters_outside_the_prior_support(tmp_path):
    path = tmp_path / "moons.toml"
    path.write_text('simulator = "two_moons"\n[observations]\ntrue_parameters = [[0.5, 1.5]]\n')
    code, _, err = run_cli("run", str(path), "--out", str(tmp_path / "out"), "--quiet")
    assert_user_error(code, err, "true_parameters row 0 [0.5, 1.5] lies outside the support")
    assert not (tmp_path / "out" / "simulations").exists()


def test_an_empty_study_file_prints_the_minimal_valid_one(tmp_path):
    path = tmp_path / "empty.toml"
    path.write_text("# nothing yet\n")
    code, _, err = run_cli("run", str(path), "--out", str(tmp_path / "out"))
    assert_user_error(code, err, "empty", 'simulator = "two_moons"')
    minimal = tmp_path / "minimal.toml"
    minimal.write_text('simulator = "two_moons"\n')
    assert study_cli.load_study_config(minimal).values == {"simulator": {"name": "two_moons"}}


def test_bad_paths_are_user_errors(tmp_path):
    folder = tmp_path / "study.toml"
    folder.mkdir()
    code, _, err = run_cli("run", str(folder))
    assert_user_error(code, err, "is a folder, not a TOML file")
    study = tmp_path / "tiny.toml"
    study.write_text(TINY)
    taken = tmp_path / "taken"
    taken.write_text("")
    code, _, err = run_cli("run", str(study), "--out", str(taken), "--quiet")
    assert_user_error(code, err, "taken", "file")
    binary = tmp_path / "binary.toml"
    binary.write_bytes(bytes(range(256)))
    code, _, err = run_cli("run", str(binary))
    assert_user_error(code, err, "not a TOML file")
    code, _, err = run_cli("report", str(taken))
    assert_user_error(code, err, "holds no study result")


def test_usage_errors_are_one_line_too():
    for argv in (["list", "simulatorz"], ["plugins", "--jsn"], ["run"], ["frobnicate"]):
        code, _, err = run_cli(*argv)
        assert_user_error(code, err, "--help")


def _corrupt(folder: Path, source: Path, how: str) -> None:
    data = source.read_bytes()
    target = folder / "result.nc"
    if how == "zero-byte":
        target.write_bytes(b"")
    elif how == "truncated":
        target.write_bytes(data[: len(data) // 2])
    elif how == "random bytes":
        target.write_bytes(np.random.default_rng(0).bytes(len(data)))
    elif how == "header only":
        target.write_bytes(data[:8])
    elif how in ("no posterior group", "no observed_data group"):
        group = how.split()[1]
        with xr.open_datatree(source) as tree:
            kept = {f"/{name}": node.to_dataset() for name, node in tree.children.items()}
            attrs = dict(tree.attrs)
        del kept[f"/{group}"]
        damaged = xr.DataTree.from_dict(kept)
        damaged.attrs = attrs
        damaged.to_netcdf(target)
    elif how == "foreign netCDF":
        xr.Dataset({"temperature": ("time", np.arange(3.0))}).to_netcdf(target)
    elif how == "no provenance":
        with xr.open_datatree(source) as tree:
            damaged = tree.load().copy()
        del damaged.attrs["provenance"]
        damaged.to_netcdf(target)


@pytest.mark.parametrize(
    ("how", "needle"),
    [
        ("zero-byte", "cannot be read as netCDF"),
        ("truncated", "cannot be read as netCDF"),
        ("random bytes", "cannot be read as netCDF"),
        ("header only", "cannot be read as netCDF"),
        ("no posterior group", "has no 'posterior' group"),
        ("no observed_data group", "has no 'observed_data' group"),
        ("foreign netCDF", "was not written by sbiplug"),
        ("no provenance", "lacks a readable 'provenance' attribute"),
    ],
)
def test_report_on_a_corrupt_or_foreign_result(tmp_path, result_file, how, needle):
    _corrupt(tmp_path, result_file, how)
    code, _, err = run_cli("report", str(tmp_path))
    assert_user_error(code, err, "not a sbiplug result", needle)


def test_report_on_the_intact_result_works(tmp_path, result_file):
    (tmp_path / "result.nc").write_bytes(result_file.read_bytes())
    code, out, err = run_cli("report", str(tmp_path))
    assert code == 0, err
    assert "posterior of observation 0" in out


def test_an_internal_error_keeps_its_traceback_and_says_so(monkeypatch, tmp_path):
    def broken(args):
        raise RuntimeError("a bug")

    monkeypatch.setattr(study_cli, "_cmd_report", broken)
    code, _, err = run_cli("report", str(tmp_path))
    assert code == 1
    assert "Traceback (most recent call last)" in err and "RuntimeError: a bug" in err
    assert "internal error" in err.strip().splitlines()[-1]


def test_real_subprocesses(tmp_path, result_file):
    """The installed command, not only ``main``: a typo and a truncated result."""
    study = tmp_path / "typo.toml"
    study.write_text(TINY.replace("{ dim = 2 }", "{ dimm = 2 }"))
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    typo = subprocess.run(
        [sys.executable, "-m", "sbiplug", "run", str(study), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
    )
    assert_user_error(typo.returncode, typo.stderr, "unknown option 'dimm'")
    (tmp_path / "result.nc").write_bytes(result_file.read_bytes()[:1000])
    report = subprocess.run(
        [sys.executable, "-m", "sbiplug", "report", str(tmp_path)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
    )
    assert_user_error(report.returncode, report.stderr, "not a sbiplug result")
