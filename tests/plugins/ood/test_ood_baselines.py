"""Likelihood and typicality baselines, and the AUROC."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sbiplug_ood import GradientNormScorer, LikelihoodScorer, TypicalityScorer, auroc


def test_auroc_counts_pairs_and_half_ties():
    assert auroc([0.0, 1.0], [2.0, 3.0]) == 1.0
    assert auroc([2.0, 3.0], [0.0, 1.0]) == 0.0
    # Pairs (in, out): (1, 1) tie = 1/2, (1, 2) = 1, (3, 1) = 0, (3, 2) = 0 -> 1.5 / 4.
    assert auroc(torch.tensor([1.0, 3.0]), np.array([1.0, 2.0])) == pytest.approx(0.375)
    assert auroc([5.0] * 3, [5.0] * 4) == 0.5
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=40), rng.normal(0.5, size=30)
    brute = np.mean([(o > i) + 0.5 * (o == i) for i in a for o in b])
    assert auroc(a, b) == pytest.approx(brute)
    with pytest.raises(ValueError, match="empty"):
        auroc([], [1.0])
    with pytest.raises(ValueError, match="NaN"):
        auroc([float("nan")], [1.0])


def test_likelihood_fails_where_typicality_and_gradients_do_not(gaussian_model):
    generator = torch.Generator().manual_seed(10)
    fit, test = torch.randn(2, 200, 8, generator=generator)
    too_likely = 0.2 * torch.randn(200, 8, generator=generator)
    for batch_size in (1, 5):
        likelihood = LikelihoodScorer(gaussian_model, batch_size).fit(fit)
        typicality = TypicalityScorer(gaussian_model, batch_size).fit(fit)
        gradient = GradientNormScorer(gaussian_model, batch_size).fit(fit)
        assert auroc(likelihood.score(test), likelihood.score(too_likely)) < 0.1
        assert auroc(typicality.score(test), typicality.score(too_likely)) > 0.9
        assert auroc(gradient.score(test), gradient.score(too_likely)) > 0.9


def test_typicality_is_distance_to_mean_group_nll(gaussian_model):
    generator = torch.Generator().manual_seed(11)
    fit, x = torch.randn(40, 8, generator=generator), torch.randn(10, 8, generator=generator)
    scorer = TypicalityScorer(gaussian_model, batch_size=2).fit(fit)
    with torch.no_grad():
        nll_fit = -gaussian_model.log_prob(fit).reshape(20, 2).mean(1)
        nll_x = -gaussian_model.log_prob(x).reshape(5, 2).mean(1)
    assert scorer.entropy == pytest.approx(float(nll_fit.mean()), rel=1e-6)
    torch.testing.assert_close(scorer.score(x).float(), (nll_x - nll_fit.mean()).abs())
    likelihood = LikelihoodScorer(gaussian_model, batch_size=2).fit(fit)
    torch.testing.assert_close(likelihood.score(x).float(), nll_x)


def test_baseline_errors(gaussian_model):
    with pytest.raises(RuntimeError, match="not fitted"):
        TypicalityScorer(gaussian_model).score(torch.randn(3, 8))
    with pytest.raises(ValueError, match="at least 2 in-distribution groups"):
        TypicalityScorer(gaussian_model, batch_size=5).fit(torch.randn(9, 8))
    scorer = LikelihoodScorer(gaussian_model).fit(torch.randn(5, 8))
    with pytest.raises(ValueError, match=r"expected \(8,\)"):
        scorer.score(torch.randn(5, 3))
    with pytest.raises(TypeError, match="no log_prob method"):
        LikelihoodScorer(torch.nn.Linear(1, 1))
