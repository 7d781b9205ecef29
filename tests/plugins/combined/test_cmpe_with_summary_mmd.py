"""Two plugins together: misspec's one SummaryMMD serves CMPE's ``summary_loss`` option unchanged.

This needs both sbiplug-cmpe and sbiplug-misspec, so it lives outside either plugin's own tests.
"""

from __future__ import annotations

import torch

import sbiplug
from sbiplug_misspec import DeepSetEmbedding, GaussianMeans, SummaryMMD, misspecification_test
from sbiplug_misspec.hypothesis_test import resolve_summary, summarise
from sbiplug_misspec.regularizer import mmd_squared


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


def _train_cmpe(
    simulator: GaussianMeans, penalty: RecordingPenalty, weight: float
) -> tuple[object, torch.Tensor]:
    theta = simulator.sample_prior(1000, seed=0)
    x = simulator.simulate(theta, seed=1)
    torch.manual_seed(0)
    trainer = sbiplug.make_estimator(
        "cmpe",
        simulator.prior,
        embedding_net=DeepSetEmbedding(2, 4, hidden_features=16),
        summary_loss=penalty,
        summary_loss_weight=weight,
        hidden_features=32,
    )
    trainer.append_simulations(theta, x).train(max_num_epochs=10, training_batch_size=50)
    x_eval = simulator.simulate(simulator.sample_prior(500, seed=4), seed=5)
    return trainer, summarise(resolve_summary(trainer), x_eval)


def test_cmpe_trains_its_embedding_net_with_summary_mmd():
    simulator = GaussianMeans(n_obs=5)
    penalty = RecordingPenalty()
    trainer, summaries = _train_cmpe(simulator, penalty, weight=1.0)
    assert penalty.shapes and all(shape[1] == 4 for shape in penalty.shapes)
    # Against the same CMPE trained without the penalty (same seed and data), the summaries
    # end up closer to N(0, I). Two normal samples of 500 give MMD² 0.035 ± 0.003, so a fall
    # of a fifth (about 0.1 here) is far outside sampling noise.
    _, plain_summaries = _train_cmpe(simulator, RecordingPenalty(), weight=0.0)
    normal = torch.randn(500, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    assert mmd_squared(summaries, normal) < 0.8 * mmd_squared(plain_summaries, normal)
    shifted = GaussianMeans(n_obs=5, prior_loc=6.0)
    x_bad = shifted.simulate(shifted.sample_prior(3, seed=2), seed=3)
    result = misspecification_test(trainer, simulator, x_bad, num_reference=200, num_null=99)
    assert result.rejected
