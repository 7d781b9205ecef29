"""``sbiplug run`` and ``sbiplug report``: TOML checking, a tiny study end to end, resume."""

from __future__ import annotations

import json

import pytest
import xarray as xr

from sbiplug.cli import main

TINY = """
seed = 4
num_simulations = 400
num_posterior_samples = 100
num_predictive_draws = 20
show_progress_bars = false

[simulator]
name = "two_moons"

[estimator]
name = "npe"
options = { hidden_features = 16, num_transforms = 2 }
train = { max_num_epochs = 2 }

[observations]
true_parameters = [[0.2, 0.1], [-0.5, 0.3]]

[diagnostics.sbc]
num_sbc_runs = 20
num_posterior_samples = 20
c2st = false

[simulation]
chunk_size = 100
"""


def _run(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "num_simulations = '10k'",
            "key 'num_simulations' must be an integer >= 2, got '10k' (string)",
        ),
        (
            "[estimator]\nname = 'npe'\noptionz = {}",
            "unknown key 'estimator.optionz'; expected one of: name, options, train, posterior",
        ),
        (
            "[simulation]\nexecutor = 'spark'",
            "key 'simulation.executor' must be one of 'local', 'joblib', 'dask', got 'spark'",
        ),
        (
            "[observations]\ntrue_parameters = ['a']",
            "key 'observations.true_parameters' must be an array of numbers",
        ),
        ("[simulator]\noptions = {}", "key 'simulator.name' is missing"),
        ("seed = [", "not valid TOML"),
        ("simulator = 'two_moon'", "unknown simulator 'two_moon'; did you mean 'two_moons'?"),
        ("simulator = 'two_moons'\ndiagnostics = ['sbc', 'tarpp']", "unknown diagnostic 'tarpp'"),
        (
            "simulator = 'two_moons'\n[estimator]\nname = 'npe'\ntrain = { epochs = 3 }",
            "train_options do not fit train()",
        ),
    ],
)
def test_bad_study_files_name_the_key(tmp_path, capsys, text, message):
    path = tmp_path / "study.toml"
    path.write_text(text + "\n")
    code, _, err = _run(["run", str(path), "--out", str(tmp_path / "out")], capsys)
    assert code == 2
    assert message in err
    assert "Traceback" not in err and not (tmp_path / "out" / "result").exists()


def test_missing_file_and_missing_result_are_user_errors(tmp_path, capsys):
    code, _, err = _run(["run", str(tmp_path / "absent.toml")], capsys)
    assert code == 2 and "does not exist" in err
    code, _, err = _run(["report", str(tmp_path)], capsys)
    assert code == 2 and "holds no study result" in err


def test_run_report_and_resume(tmp_path, capsys):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    out = tmp_path / "out"
    code, stdout, err = _run(["run", str(path), "--out", str(out), "--quiet"], capsys)
    assert code == 0, err
    assert "posterior of observation 1:" in stdout and "sbc" in stdout
    assert (out / "summary.txt").read_text() in stdout
    figures = {p.name for p in (out / "figures").iterdir()}
    assert figures == {"posterior_pair.png", "sbc_ecdf.png", "diagnostic_sbc.png"}
    assert len(list((out / "simulations").glob("chunk_*.npz"))) == 4
    with xr.open_datatree(out / "result" / "result.nc") as tree:
        provenance = json.loads(tree.attrs["provenance"])
        assert tree["posterior"].sizes["observation"] == 2
    assert provenance["num_resumed_simulations"] == 0
    assert provenance["train_options"] == {"max_num_epochs": 2}

    code, stdout, _ = _run(["report", str(out), "--figures", str(tmp_path / "again")], capsys)
    assert code == 0
    assert (tmp_path / "again" / "figures" / "posterior_pair.png").stat().st_size > 1000
    assert "theta_1" in stdout and "diagnostics:" in stdout

    (out / "simulations" / "chunk_000003.npz").unlink()  # as if killed in the last chunk
    code, _, err = _run(["run", str(path), "--out", str(out), "--quiet", "--resume"], capsys)
    assert code == 0, err
    with xr.open_datatree(out / "result" / "result.nc") as tree:
        resumed = json.loads(tree.attrs["provenance"])
    assert resumed["num_resumed_simulations"] == 300
