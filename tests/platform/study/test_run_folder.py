"""``sbiplug run`` into a folder with finished work: resume only with the settings that made it,
re-simulate corrupt chunks, never delete anything.

The CLI runs in this process (``main``) on the ``noisy_toy`` plugin of ``ledger_toys``; the
crash test (``test_crash_resume.py``) runs it in subprocesses. Only the CLI is imported, so the
tests state behaviour, whatever the modules behind it.
"""

from __future__ import annotations

import hashlib
import json

import ledger_toys
import pytest
import xarray as xr

from sbiplug.cli import main

STUDY = """
seed = 2
num_simulations = 120
num_posterior_samples = 20
num_predictive_draws = 0
show_progress_bars = false

[simulator]
name = "noisy_toy"
options = {{ sigma = {sigma} }}

[estimator]
name = "npe"
options = {{ hidden_features = 8, num_transforms = 1 }}
train = {{ max_num_epochs = 1 }}

[observations]
true_parameters = [[0.1, -0.2]]

[simulation]
chunk_size = 40
"""


@pytest.fixture
def toy(register_plugin):
    assert register_plugin(ledger_toys, "ledger_toys").status == "loaded"


def _study(tmp_path, sigma=1.0):
    path = tmp_path / "study.toml"
    path.write_text(STUDY.format(sigma=sigma))
    return path


def _run(capsys, study, out, *flags):
    code = main(["run", str(study), "--out", str(out), "--quiet", *flags])
    captured = capsys.readouterr()
    return code, captured.err


def file_sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _chunks(out):
    """sha256 of every chunk file, by name."""
    return {p.name: file_sha256(p) for p in sorted((out / "simulations").glob("chunk_*.npz"))}


def _one_line(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sbiplug: error: "), err
    return lines[0]


def test_changed_simulator_option_is_refused_naming_it(toy, tmp_path, capsys):
    out = tmp_path / "out"
    assert _run(capsys, _study(tmp_path, sigma=1.0), out)[0] == 0
    (out / "simulations" / "chunk_000002.npz").unlink()  # as if killed before the last chunk
    before = _chunks(out)
    code, err = _run(capsys, _study(tmp_path, sigma=5.0), out, "--resume")
    assert code == 2
    line = _one_line(err)
    assert "cannot resume" in line and "simulator_options.sigma: 1.0 -> 5.0" in line
    assert "--overwrite" in line
    assert _chunks(out) == before  # nothing simulated with sd 5 beside the sd 1 chunks
    assert json.loads((out / "simulations" / "manifest.json").read_text())["simulator_options"] == {
        "sigma": 1.0
    }


def test_changed_prior_is_refused(toy, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    study = _study(tmp_path)
    assert _run(capsys, study, out)[0] == 0
    before = _chunks(out)
    monkeypatch.setattr(ledger_toys.NoisyToy, "prior_scale", 2.0)  # same options, new prior
    code, err = _run(capsys, study, out, "--resume")
    assert code == 2
    line = _one_line(err)
    assert "prior: " in line and "simulator_options" not in line
    assert _chunks(out) == before


def test_corrupt_chunks_are_simulated_again_with_a_counted_warning(toy, tmp_path, capsys):
    out = tmp_path / "out"
    study = _study(tmp_path)
    assert _run(capsys, study, out)[0] == 0
    before = _chunks(out)
    flipped = out / "simulations" / "chunk_000000.npz"
    content = bytearray(flipped.read_bytes())
    content[len(content) // 2] ^= 0xFF  # one flipped byte inside the stored arrays
    flipped.write_bytes(bytes(content))
    truncated = out / "simulations" / "chunk_000002.npz"
    truncated.write_bytes(truncated.read_bytes()[:50])
    with pytest.warns(UserWarning, match=r"2 of 3 simulation chunks .* \(chunks 0, 2\)"):
        code, err = _run(capsys, study, out, "--resume")
    assert code == 0, err
    assert _chunks(out) == before  # re-simulated bit for bit
    with xr.open_datatree(out / "result" / "result.nc") as tree:
        assert json.loads(tree.attrs["provenance"])["num_resumed_simulations"] == 40


def test_rerun_without_resume_refuses_and_keeps_the_chunks(toy, tmp_path, capsys):
    out = tmp_path / "out"
    study = _study(tmp_path)
    assert _run(capsys, study, out)[0] == 0
    before = _chunks(out)
    result = file_sha256(out / "result" / "result.nc")
    code, err = _run(capsys, study, out)
    assert code == 2
    line = _one_line(err)
    assert "holds finished work (3 simulation chunks, a result)" in line
    assert "--resume" in line and "--overwrite" in line
    assert _chunks(out) == before and file_sha256(out / "result" / "result.nc") == result
    code, err = _run(capsys, study, out, "--resume", "--overwrite")
    assert code == 2 and "exclude each other" in _one_line(err)


def test_overwrite_moves_the_old_work_aside(toy, tmp_path, capsys):
    out = tmp_path / "out"
    study = _study(tmp_path)
    assert _run(capsys, study, out)[0] == 0
    before = _chunks(out)
    (out / "notes.txt").write_text("mine")
    code, err = _run(capsys, study, out, "--overwrite")
    assert code == 0, err
    (old,) = tmp_path.glob("out.old-*")
    assert f"moved the previous work in {out} to {old}" in err
    assert _chunks(old) == before and (old / "notes.txt").read_text() == "mine"
    assert (old / "result" / "result.nc").exists()
    assert _chunks(out) == before and not (out / "notes.txt").exists()  # a fresh, same run
    assert _run(capsys, study, out, "--overwrite")[0] == 0
    assert len(list(tmp_path.glob("out.old-*"))) == 2  # a second move never replaces the first
