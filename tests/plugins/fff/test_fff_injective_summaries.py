"""FIF summaries in SBI: pretrained before NPE, frozen, saved and reloaded; manifold check."""

from __future__ import annotations

import pytest
import torch

import sbiplug
from sbiplug.sbi_internals import trained_network
from sbiplug_fff import FIFSummary
from sbiplug_fff.simulators.waveform import Waveform
from sbiplug_fff.summaries import find_fif_summary

POINTS = 20
FIF = {
    "name": "fif",
    "options": {"input_dim": POINTS, "output_dim": 3, "num_steps": 150, "hidden_features": 32},
}


def test_fif_summary_study_round_trip_and_manifold_check(tmp_path):
    simulator = Waveform(num_points=POINTS)
    theta_o = simulator.sample_prior(4, seed=11)
    clean = simulator.simulate(theta_o[:2], seed=12)
    drifted = Waveform(num_points=POINTS, drift=1.5).simulate(theta_o[2:], seed=13)
    study = sbiplug.Study(
        "waveform",
        simulator_options={"num_points": POINTS},
        estimator_options={"embedding_net": FIF, "hidden_features": 16, "num_transforms": 1},
        num_simulations=600,
        train_options={"max_num_epochs": 3},
        diagnostics={"fif_manifold": {"num_reference": 300}},
        show_progress_bars=False,
    )
    with pytest.warns(UserWarning, match="off the simulations' manifold"):
        result = study.run(
            torch.cat([clean, drifted]), num_posterior_samples=20, num_predictive_draws=0
        )
    found = find_fif_summary(trained_network(result.estimator))
    assert found is not None
    summary, _ = found
    assert bool(summary.pretrained)  # npe called pretrain(x) before training
    assert not any(p.requires_grad for p in summary.parameters())  # frozen by default
    check = result.diagnostics["fif_manifold"]
    assert check.data["flagged"].values.tolist() == [0, 0, 1, 1]
    assert check.data.attrs["flow"] == "estimator's fif summary net"

    result.save(tmp_path)
    loaded = sbiplug.StudyResult.load(tmp_path)
    theta, x_o = result.samples[0, 0, :10], result.observations[0]
    # unnormalised: the box prior's leakage factor is itself a Monte Carlo estimate
    torch.testing.assert_close(
        result.posterior.log_prob(theta, x=x_o, norm_posterior=False),
        loaded.posterior.log_prob(theta, x=x_o, norm_posterior=False),
    )
    torch.manual_seed(5)
    first = result.posterior.sample((5,), x=x_o, show_progress_bars=False)
    torch.manual_seed(5)
    second = loaded.posterior.sample((5,), x=x_o, show_progress_bars=False)
    torch.testing.assert_close(first, second)
    reloaded, _ = find_fif_summary(trained_network(loaded.estimator))
    assert bool(reloaded.pretrained)


def test_fif_summary_bad_input_is_an_error_before_training():
    with pytest.raises(ValueError, match=r"output_dim \(d = 5\) must be smaller .*D = 5"):
        sbiplug.make_embedding_net("fif", input_dim=5, output_dim=5)
    net = FIFSummary(6, 2, num_steps=1)
    with pytest.raises(ValueError, match=r"shape \(B, 6\)"):
        net.pretrain(torch.randn(30, 5))
    x = torch.randn(30, 6)
    x[3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        net.pretrain(x)
    assert not bool(net.pretrained)


def test_fif_summary_is_frozen_or_fine_tuned_after_pretraining():
    x = torch.randn(200, 6)
    for fine_tune in (False, True):
        net = FIFSummary(6, 2, fine_tune=fine_tune, num_steps=2, hidden_features=8)
        net.pretrain(x)
        assert bool(net.pretrained)
        assert all(p.requires_grad == fine_tune for p in net.parameters())
        assert net(x[:4]).requires_grad == fine_tune
        assert net(x[:4].reshape(4, 2, 3)).shape == (4, 2)  # structured x is flattened
        before = [p.clone() for p in net.parameters()]
        net.pretrain(x)  # only once, unless forced
        assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))
