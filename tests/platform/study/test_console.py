"""Console: training and sampling bars on stderr with true totals, nothing from sbi on stdout,
and a warning when MCMC chains disagree (R-hat and ESS thresholds of Vehtari et al. 2021)."""

from __future__ import annotations

import re
import subprocess
import sys
import warnings

import pytest
import torch

from sbiplug.cli import main
from sbiplug.inference_data import ESS_THRESHOLD, RHAT_THRESHOLD, ConvergenceWarning
from sbiplug.report import format_report
from sbiplug.results import StudyResult
from sbiplug.sbi_internals import training_console

STUDY = """
seed = 5
num_simulations = 200
num_posterior_samples = 300
num_predictive_draws = 0
{progress}
[simulator]
name = "two_moons"
[estimator]
name = "npe"
options = {{ hidden_features = 8, num_transforms = 1 }}
train = {{ max_num_epochs = 3 }}
[observations]
num_observations = 2
"""


def test_run_keeps_stdout_clean_and_bars_on_stderr(tmp_path):
    study = tmp_path / "study.toml"
    study.write_text(STUDY.format(progress=""))
    completed = subprocess.run(
        [sys.executable, "-m", "sbiplug", "run", str(study), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    out, err = completed.stdout, completed.stderr
    for sbi_print in ("Epochs trained", "Training neural network", "converged after"):
        assert sbi_print not in out
    assert out.startswith("sbiplug study:")
    # the training counter is a tqdm bar: 3 epochs + sbi's last check = 4
    assert re.search(r"Training: 4epoch", err), err
    # the sampling bar ends at its total (2 observations x 300 draws), printed once
    finals = re.findall(r"Sampling posterior: 100%\|[^|]*\| (\d+)/(\d+)", err)
    assert finals == [("600", "600")], err
    assert not re.search(r"\d+it \[", err), "a bar counted past its total"


def test_progress_bars_switch_off(tmp_path, capsys):
    study = tmp_path / "study.toml"
    study.write_text(STUDY.format(progress="show_progress_bars = false"))
    assert main(["run", str(study), "--out", str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    assert "Training" not in captured.err and "Sampling" not in captured.err
    assert "Epochs trained" not in captured.out


def test_training_console_routes_sbi_prints_and_leaves_the_trainer_as_it_was(capsys, caplog):
    from sbi.inference import NPE
    from sbi.utils import BoxUniform

    prior = BoxUniform(-torch.ones(2), torch.ones(2))
    theta = prior.sample((200,))
    trainer = NPE(prior, show_progress_bars=True, density_estimator="mdn")
    trainer.append_simulations(theta, theta + 0.1 * torch.randn_like(theta))
    with caplog.at_level("INFO", logger="sbiplug"), training_console(trainer):
        trainer.train(max_num_epochs=50, stop_after_epochs=2)
    captured = capsys.readouterr()
    assert captured.out == ""
    epochs = trainer.summary["epochs_trained"][-1]
    assert f"Training: {epochs}epoch" in captured.err.replace("\r", "\n")
    if epochs <= 50:
        assert f"converged after {epochs} epochs" in caplog.text
    assert "_maybe_show_progress" not in vars(trainer)
    assert "_report_convergence_at_end" not in vars(trainer)


def _result(samples: torch.Tensor) -> StudyResult:
    return StudyResult(
        simulator=None, estimator=None, samples=samples, observations=torch.zeros(1, 2)
    )


def test_disagreeing_chains_warn_in_summary_and_report():
    generator = torch.Generator().manual_seed(0)
    # four chains of 50 draws, one shifted by two standard deviations
    samples = torch.randn(1, 4, 50, 2, generator=generator)
    samples[0, 0] += 2.0
    result = _result(samples)
    with pytest.warns(ConvergenceWarning, match=rf"R-hat > {RHAT_THRESHOLD}") as caught:
        table = result.summary()
    assert (table["r_hat"] > RHAT_THRESHOLD).all()
    messages = " ".join(str(w.message) for w in caught)
    assert f"bulk ESS < {ESS_THRESHOLD}" in messages
    report = format_report(result)
    assert "WARNING: chains not converged: R-hat > 1.01 for 2 of 2 parameters" in report


def test_well_mixed_chains_and_single_chains_do_not_warn():
    generator = torch.Generator().manual_seed(1)
    mixed = _result(torch.randn(1, 4, 500, 2, generator=generator))
    single = _result(torch.randn(1, 1, 100, 2, generator=generator))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        mixed.summary()
        single.summary()
    assert "WARNING" not in format_report(mixed) + format_report(single)
