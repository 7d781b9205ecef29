"""The one SummaryMMD serves other estimators unchanged: CMPE's ``summary_loss`` option."""

from __future__ import annotations

import torch

import sbiplug
from sbiplug_misspec import DeepSetEmbedding, GaussianMeans, SummaryMMD, misspecification_test


class RecordingPenalty:
    """SummaryMMD plus a record of the summaries it was given."""

    def __init__(self) -> None:
        self.penalty = SummaryMMD()
        self.shapes: list[tuple[int, ...]] = []
        self.values: list[float] = []

    def __call__(self, summaries: torch.Tensor) -> torch.Tensor:
        self.shapes.append(tuple(summaries.shape))
        value = self.penalty(summaries)
        self.values.append(float(value.detach()))
        return value


def test_cmpe_trains_its_embedding_net_with_summary_mmd():
    simulator = GaussianMeans(n_obs=5)
    theta = simulator.sample_prior(300, seed=0)
    x = simulator.simulate(theta, seed=1)
    penalty = RecordingPenalty()
    torch.manual_seed(0)
    trainer = sbiplug.make_estimator(
        "cmpe",
        simulator.prior,
        embedding_net=DeepSetEmbedding(2, 4, hidden_features=16),
        summary_loss=penalty,
        hidden_features=32,
    )
    trainer.append_simulations(theta, x).train(max_num_epochs=3, training_batch_size=50)
    assert penalty.shapes and all(shape[1] == 4 for shape in penalty.shapes)
    # The penalty falls as training pulls the summaries towards N(0, I).
    first, last = penalty.values[:5], penalty.values[-5:]
    assert sum(last) < sum(first)
    shifted = GaussianMeans(n_obs=5, prior_loc=6.0)
    x_bad = shifted.simulate(shifted.sample_prior(3, seed=2), seed=3)
    result = misspecification_test(trainer, simulator, x_bad, num_reference=200, num_null=99)
    assert result.rejected
