"""The misspec summary networks are registered embedding nets: an estimator using one reloads."""

from __future__ import annotations

import torch

import sbiplug


def test_plugin_summary_net_round_trips_through_save_and_load(tmp_path):
    spec = {"name": "mlp_linear", "options": {"input_dim": 10, "summary_dim": 4}}
    study = sbiplug.Study(
        "gaussian_linear",
        estimator_options={"embedding_net": spec, "hidden_features": 8, "num_transforms": 1},
        num_simulations=200,
        train_options={"max_num_epochs": 2},
        show_progress_bars=False,
    )
    result = study.run(num_posterior_samples=20, num_predictive_draws=0)
    assert sbiplug.embedding_nets()["mlp_linear"].plugin == "misspec"
    result.save(tmp_path)
    loaded = sbiplug.StudyResult.load(tmp_path)
    theta, x_o = result.samples[0, 0, :10], result.observations[0]
    torch.testing.assert_close(
        result.posterior.log_prob(theta, x=x_o), loaded.posterior.log_prob(theta, x=x_o)
    )


def test_deepset_builds_from_json_options():
    net = sbiplug.make_embedding_net("deepset", input_dim=2, summary_dim=4)
    assert net(torch.zeros(3, 25, 2)).shape == (3, 4)
