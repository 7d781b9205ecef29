"""GradientNormScorer: features against an autograd loop, speed, invariance, fit/score errors."""

from __future__ import annotations

import math
import time

import pytest
import torch
from torch import Tensor, nn

from sbiplug_ood import GradientNormScorer, StandardizedFlow, VectorizationWarning, auroc


def loop_features(model: nn.Module, x: Tensor, batch_size: int = 1) -> Tensor:
    """The reference: one autograd backward pass per group, log squared norm per tensor."""
    parameters = list(model.parameters())
    rows = []
    for start in range(0, len(x) - batch_size + 1, batch_size):
        log_prob = model.log_prob(x[start : start + batch_size]).sum()
        gradients = torch.autograd.grad(log_prob, parameters)
        rows.append(torch.stack([torch.log(g.square().sum() + 1e-10) for g in gradients]))
    return torch.stack(rows).detach()


@pytest.mark.parametrize("batch_size", [1, 3])
def test_features_equal_per_input_autograd_loop(small_flow, batch_size):
    x = torch.randn(31, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    scorer = GradientNormScorer(small_flow, batch_size, chunk_size=4)  # several chunks
    features = scorer.features(x)
    assert features.shape == (31 // batch_size, len(list(small_flow.parameters())))
    assert scorer.feature_names == [name for name, _ in small_flow.named_parameters()]
    torch.testing.assert_close(
        features, loop_features(small_flow, x, batch_size), rtol=1e-9, atol=1e-9
    )


def test_features_match_closed_form(gaussian_model):
    # d/dloc log N = z / sigma and d/dlog_scale = z^2 - 1 at loc = 0, sigma = 1.
    x = torch.randn(50, 8, generator=torch.Generator().manual_seed(2))
    features = GradientNormScorer(gaussian_model).features(x)
    expected = (
        torch.stack([x.square().sum(1), (x.square() - 1).square().sum(1)], dim=1).add(1e-10).log()
    )
    torch.testing.assert_close(features, expected, rtol=1e-5, atol=1e-5)


def test_vectorized_path_is_ten_times_faster_than_loop():
    import zuko

    torch.manual_seed(0)
    model = StandardizedFlow(
        zuko.flows.MAF(4, 0, hidden_features=(32, 32), transforms=3), torch.zeros(4), torch.ones(4)
    )
    x = torch.randn(512, 4, generator=torch.Generator().manual_seed(3))
    scorer = GradientNormScorer(model, vectorize=True)
    scorer.features(x[:8])  # warm up both paths once
    loop_features(model, x[:8])

    start = time.perf_counter()
    batched = scorer.features(x)
    batched_time = time.perf_counter() - start
    start = time.perf_counter()
    looped = loop_features(model, x)
    loop_time = time.perf_counter() - start

    torch.testing.assert_close(batched, looped, rtol=1e-4, atol=1e-4)
    assert loop_time / batched_time >= 10.0, (loop_time, batched_time)


class AffineInput(nn.Module):
    """log p(y) of y = A x + b for a model of x: the model's input layer absorbs (A, b)."""

    def __init__(self, inner: nn.Module, matrix: Tensor, offset: Tensor) -> None:
        super().__init__()
        self.inner = inner
        self.register_buffer("matrix", matrix)
        self.register_buffer("offset", offset)

    def log_prob(self, y: Tensor) -> Tensor:
        x = torch.linalg.solve(self.matrix, (y - self.offset).T).T
        return self.inner.log_prob(x) - torch.linalg.slogdet(self.matrix)[1]


class SinhInput(nn.Module):
    """log p(y) of y = sinh(x): a nonlinear bijection, so log|det J| depends on x."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def log_prob(self, y: Tensor) -> Tensor:
        x = torch.asinh(y)
        return self.inner.log_prob(x) - torch.log(torch.cosh(x)).sum(dim=-1)


def test_features_invariant_under_reparameterisation_while_likelihood_changes(small_flow):
    generator = torch.Generator().manual_seed(4)
    x = torch.randn(64, 4, generator=generator, dtype=torch.float64)
    matrix = torch.randn(4, 4, generator=generator, dtype=torch.float64) + 3 * torch.eye(4)
    offset = torch.randn(4, generator=generator, dtype=torch.float64)
    y = x @ matrix.T + offset
    reparameterised = AffineInput(small_flow, matrix, offset)

    features_x = GradientNormScorer(small_flow).features(x)
    features_y = GradientNormScorer(reparameterised).features(y)
    torch.testing.assert_close(features_y, features_x, rtol=1e-8, atol=1e-8)
    with torch.no_grad():
        shift = reparameterised.log_prob(y) - small_flow.log_prob(x)
    assert shift.abs().min() > 0.5  # the likelihood moved by -log|det A|

    # A nonlinear bijection changes the likelihood's ranking; the features stay put.
    z = torch.sinh(x)
    features_z = GradientNormScorer(SinhInput(small_flow)).features(z)
    torch.testing.assert_close(features_z, features_x, rtol=1e-8, atol=1e-8)
    with torch.no_grad():
        ranks_x = small_flow.log_prob(x).argsort()
        ranks_z = SinhInput(small_flow).log_prob(z).argsort()
    assert not torch.equal(ranks_x, ranks_z)


def test_detects_the_likelihood_failure_mode(gaussian_model):
    # Inputs concentrated at the mode are more likely than the data, yet atypical.
    generator = torch.Generator().manual_seed(5)
    fit, test = torch.randn(2, 300, 8, generator=generator)
    out = 0.1 * torch.randn(300, 8, generator=generator)
    scorer = GradientNormScorer(gaussian_model).fit(fit)
    assert auroc(scorer.score(test), scorer.score(out)) >= 0.9
    with torch.no_grad():
        assert auroc(-gaussian_model.log_prob(test), -gaussian_model.log_prob(out)) < 0.1


def test_in_distribution_scores_look_like_chance(gaussian_model):
    generator = torch.Generator().manual_seed(6)
    fit, first, second = torch.randn(3, 400, 8, generator=generator)
    scorer = GradientNormScorer(gaussian_model).fit(fit)
    # Mann-Whitney null: sd of the AUROC is sqrt((n1 + n2 + 1) / (12 n1 n2)).
    sd = math.sqrt((400 + 400 + 1) / (12 * 400 * 400))
    assert abs(auroc(scorer.score(first), scorer.score(second)) - 0.5) < 4 * sd


def test_fit_drops_zero_variance_features(small_flow):
    frozen_unused = nn.Parameter(torch.zeros(3, dtype=torch.float64))
    small_flow.register_parameter("unused", frozen_unused)
    x = torch.randn(40, 4, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    scorer = GradientNormScorer(small_flow).fit(x)
    assert "unused" in scorer.feature_names
    assert "unused" not in scorer.kept_feature_names
    assert scorer.features(x)[:, scorer.feature_names.index("unused")].eq(math.log(1e-10)).all()
    assert torch.isfinite(scorer.score(x)).all()


def test_conditional_model_with_context():
    import zuko

    torch.manual_seed(0)
    flow = zuko.flows.MAF(2, 3, hidden_features=(16,), transforms=2)
    model = StandardizedFlow(flow, torch.zeros(2), torch.ones(2), torch.zeros(3), torch.ones(3))
    generator = torch.Generator().manual_seed(8)
    x, context = torch.randn(20, 2, generator=generator), torch.randn(20, 3, generator=generator)
    features = GradientNormScorer(model, 2).features(x, context)
    reference = []
    for i in range(0, 20, 2):
        log_prob = model.log_prob(x[i : i + 2], context[i : i + 2]).sum()
        gradients = torch.autograd.grad(log_prob, list(model.parameters()))
        reference.append(torch.stack([torch.log(g.square().sum() + 1e-10) for g in gradients]))
    torch.testing.assert_close(features, torch.stack(reference), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="context must be a tensor of shape"):
        GradientNormScorer(model).features(x, context[:5])


def test_sbi_density_estimators_vectorised_or_falling_back():
    from sbi.neural_nets import likelihood_nn

    from sbiplug_ood import density_from_estimator

    generator = torch.Generator().manual_seed(9)
    theta = torch.randn(100, 2, generator=generator)
    x = theta + 0.1 * torch.randn(100, 2, generator=generator)
    torch.manual_seed(0)
    maf = density_from_estimator(likelihood_nn("maf", hidden_features=16)(theta, x))
    vectorized = GradientNormScorer(maf, vectorize=True).features(x[:12], theta[:12])
    looped = GradientNormScorer(maf, vectorize=False).features(x[:12], theta[:12])
    torch.testing.assert_close(vectorized, looped, rtol=1e-4, atol=1e-4)

    # nflows' splines index with boolean masks, which vmap cannot batch.
    nsf = density_from_estimator(likelihood_nn("nsf", hidden_features=16)(theta, x))
    with pytest.raises(RuntimeError, match=r"does not support torch\.func\.vmap"):
        GradientNormScorer(nsf, vectorize=True).features(x[:4], theta[:4])
    with pytest.warns(VectorizationWarning):
        fallback = GradientNormScorer(nsf).features(x[:4], theta[:4])
    torch.testing.assert_close(
        fallback, GradientNormScorer(nsf, vectorize=False).features(x[:4], theta[:4])
    )


def test_errors_name_the_problem(gaussian_model):
    x = torch.randn(40, 8)
    with pytest.raises(TypeError, match="no log_prob method"):
        GradientNormScorer(nn.Linear(2, 2))
    with pytest.raises(TypeError, match=r"torch\.nn\.Module"):
        GradientNormScorer(object())
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        GradientNormScorer(gaussian_model, 0)
    scorer = GradientNormScorer(gaussian_model, batch_size=2)
    with pytest.raises(RuntimeError, match="not fitted"):
        scorer.score(x)
    with pytest.raises(ValueError, match="at least 10 groups"):
        scorer.fit(x[:19])
    with pytest.raises(ValueError, match="leading batch dimension"):
        scorer.features(x[0])
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        scorer.features(x.numpy())
    scorer.fit(x)
    with pytest.raises(ValueError, match=r"expected \(8,\)"):
        scorer.score(torch.randn(10, 7))
    with pytest.raises(ValueError, match="fewer than one group"):
        scorer.score(x[:1])
    with pytest.raises(ValueError, match="non-finite"):
        GradientNormScorer(gaussian_model).fit(torch.full((20, 8), float("nan")))


def test_ledoit_wolf_matches_scikit_learn():
    from sklearn.covariance import LedoitWolf

    from sbiplug_ood.gradients import ledoit_wolf

    generator = torch.Generator().manual_seed(11)
    for n, p in [(20, 30), (200, 5)]:  # fewer samples than features, and many more
        mixing = torch.randn(p, p, generator=generator, dtype=torch.float64)
        z = torch.randn(n, p, generator=generator, dtype=torch.float64) @ mixing
        covariance, shrinkage = ledoit_wolf(z)
        reference = LedoitWolf().fit(z.numpy())
        assert shrinkage == pytest.approx(reference.shrinkage_, rel=1e-9)
        torch.testing.assert_close(covariance, torch.from_numpy(reference.covariance_))
        assert 0.0 < shrinkage < 1.0


def test_full_covariance_score_is_the_joint_gaussian_nll(small_flow):
    from torch.distributions import MultivariateNormal

    from sbiplug_ood.gradients import ledoit_wolf

    generator = torch.Generator().manual_seed(12)
    fit, test = torch.randn(2, 60, 4, generator=generator, dtype=torch.float64)
    scorer = GradientNormScorer(small_flow, covariance="full").fit(fit)
    u = scorer.features(fit)[:, scorer.kept]
    std = u.std(dim=0)
    correlation, shrinkage = ledoit_wolf((u - u.mean(dim=0)) / std)
    assert scorer.shrinkage == pytest.approx(shrinkage)
    reference = MultivariateNormal(u.mean(dim=0), std[:, None] * correlation * std[None, :])
    expected = -reference.log_prob(scorer.features(test)[:, scorer.kept])
    torch.testing.assert_close(scorer.score(test), expected)
    assert "covariance='full'" in repr(scorer)
    with pytest.raises(ValueError, match="covariance must be 'diagonal' or 'full'"):
        GradientNormScorer(small_flow, covariance="dense")


class TwoScales(nn.Module):
    """Two zero-mean normals with log-scales a, b: the gradients are x_0^2 - 1 and x_1^2 - 1."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.zeros(1))
        self.b = nn.Parameter(torch.zeros(1))

    def log_prob(self, x: Tensor) -> Tensor:
        from torch.distributions import Normal

        return Normal(0.0, self.a.exp()).log_prob(x[:, 0]) + Normal(0.0, self.b.exp()).log_prob(
            x[:, 1]
        )


def test_full_covariance_sees_a_change_of_correlation_between_layers():
    # In distribution x_1 ~= x_0, so the two layers' features move together; out of
    # distribution x_0, x_1 are independent with the same marginals. Each feature alone (the
    # independent fit) barely tells them apart; their joint Gaussian does.
    generator = torch.Generator().manual_seed(0)

    def tied(n: int) -> Tensor:
        z = torch.randn(n, 1, generator=generator)
        return torch.cat([z, z * (1 + 0.01 * torch.randn(n, 1, generator=generator))], dim=1)

    fit, test = tied(400), tied(400)
    out = torch.randn(400, 2, generator=generator)
    diagonal = GradientNormScorer(TwoScales()).fit(fit)
    full = GradientNormScorer(TwoScales(), covariance="full").fit(fit)
    auroc_diagonal = auroc(diagonal.score(test), diagonal.score(out))
    auroc_full = auroc(full.score(test), full.score(out))
    assert auroc_full >= 0.8
    assert auroc_full - auroc_diagonal >= 0.15
    # In-distribution halves look alike under the joint fit as well.
    sd = math.sqrt((200 + 200 + 1) / (12 * 200 * 200))
    scores = full.score(test)
    assert abs(auroc(scores[:200], scores[200:]) - 0.5) < 4 * sd


def test_full_covariance_survives_exactly_collinear_features():
    # Two identical layers' features taking two values: the sample correlation is singular and
    # has no sampling noise to shrink, so the fit adds a tiny ridge instead of failing.
    x = torch.tensor([[2.0, 2.0], [0.5, 0.5]]).repeat(5, 1)
    scorer = GradientNormScorer(TwoScales(), covariance="full").fit(x)
    assert scorer.shrinkage == pytest.approx(0.0, abs=1e-6)
    assert torch.isfinite(scorer.score(x)).all()
    off_diagonal = torch.tensor([[2.0, 0.5]]).repeat(10, 1)
    assert (scorer.score(off_diagonal) > scorer.score(x).max() + 1e3).all()
