"""The two necessary criteria for context to help, as tests with a verdict, and the model choice.

Context S can improve the prediction of Y from X only if I(Y; S | X) > 0, which needs
(Müller et al., arXiv 2312.10107; the tests are a reconstruction, see ``docs/design/context.md``):

- **C1** the environment is inferable from a set of inputs: P(X | E) varies. Test: a
  permutation-invariant set classifier (multinomial logistic regression on the set's first and
  second moments) predicts the environment of held-out sets above chance (one-sided binomial).
- **C2** the environment tells something about Y beyond X: P(Y | X, E) varies. Test: least
  squares on quadratic features of X with environment-specific coefficients beats the pooled
  fit on held-out points (one-sided paired t-test on squared errors).

If either fails, context cannot help and the context-free model is the one to use;
:func:`choose_model` also falls back to it when the target environment is flagged as an
extrapolation (the robust choice) and picks the context model otherwise (the predictive one).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from scipy import stats
from torch import Tensor

from sbiplug.toolkit import as_generator, check_probability

__all__ = ["CriteriaReport", "check_criteria", "choose_model"]


@dataclass(frozen=True)
class CriteriaReport:
    """Outcome of the two criteria tests; ``verdict`` says it in words."""

    c1: bool
    c2: bool
    c1_accuracy: float
    c1_chance: float
    c1_p_value: float
    c2_mse_pooled: float
    c2_mse_by_environment: float
    c2_p_value: float
    alpha: float

    @property
    def context_can_help(self) -> bool:
        return self.c1 and self.c2

    @property
    def verdict(self) -> str:
        c1 = (
            f"set classifier accuracy {self.c1_accuracy:.2f} vs chance {self.c1_chance:.2f}, "
            f"p = {self.c1_p_value:.2g}"
        )
        c2 = (
            f"held-out MSE {self.c2_mse_by_environment:.3g} with the environment label vs "
            f"{self.c2_mse_pooled:.3g} without, p = {self.c2_p_value:.2g}"
        )
        if self.context_can_help:
            return f"context may help: both necessary criteria hold (C1: {c1}; C2: {c2})"
        reasons = []
        if not self.c1:
            reasons.append(f"the environment cannot be inferred from a set of inputs (C1: {c1})")
        if not self.c2:
            reasons.append(f"given X the environment carries no information about Y (C2: {c2})")
        return "context cannot help here because " + " and ".join(reasons)


def _moments(sets: Tensor) -> Tensor:
    """Permutation-invariant features of sets ``(S, n, d)``: means and second moments."""
    mean = sets.mean(1)
    second = torch.einsum("snd,sne->sde", sets, sets) / sets.shape[1]
    upper = torch.triu_indices(sets.shape[2], sets.shape[2])
    return torch.cat([mean, second[:, upper[0], upper[1]]], dim=1)


def _logistic_accuracy(train: Tensor, labels: Tensor, test: Tensor, truth: Tensor, k: int) -> float:
    loc, scale = train.mean(0), train.std(0).clamp_min(1e-6)
    train, test = (train - loc) / scale, (test - loc) / scale
    weights = torch.zeros(train.shape[1] + 1, k, requires_grad=True)
    design = torch.cat([train, torch.ones(len(train), 1)], 1)
    optimiser = torch.optim.LBFGS([weights], max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(design @ weights, labels)
        loss = loss + 1e-3 * weights[:-1].square().sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    with torch.no_grad():
        logits = torch.cat([test, torch.ones(len(test), 1)], 1) @ weights
    return float((logits.argmax(1) == truth).double().mean())


def _quadratic(x: Tensor) -> Tensor:
    upper = torch.triu_indices(x.shape[1], x.shape[1])
    square = (x[:, :, None] * x[:, None, :])[:, upper[0], upper[1]]
    return torch.cat([torch.ones(len(x), 1, dtype=x.dtype), x, square], dim=1)


def _ridge(features: Tensor, y: Tensor) -> Tensor:
    gram = features.T @ features + 1e-6 * torch.eye(features.shape[1], dtype=features.dtype)
    return torch.linalg.solve(gram, features.T @ y)


def check_criteria(
    x: Tensor,
    y: Tensor,
    *,
    set_size: int = 20,
    max_environments: int = 20,
    alpha: float = 0.01,
    seed: int = 0,
) -> CriteriaReport:
    """Test C1 and C2 on data from training environments.

    Arguments:
        x: Inputs per environment ``(E, N, d)``, E ≥ 2, N ≥ 4 · set_size.
        y: Targets ``(E, N)``.
        set_size: Size of the sets the C1 classifier sees.
        max_environments: Environments used (the first ones), to keep chance level sensible.
        alpha: Level of each test.
        seed: Seed of the splits.
    """
    check_probability("alpha", alpha, owner="check_criteria")
    x, y = torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(y, dtype=torch.float64)
    if x.ndim != 3 or y.shape != x.shape[:2] or len(x) < 2:
        raise ValueError(
            f"check_criteria: expected x (E >= 2, N, d) and y (E, N), got {tuple(x.shape)} and "
            f"{tuple(y.shape)}"
        )
    x, y = x[:max_environments], y[:max_environments]
    num_env, num, dim = x.shape
    num_sets = num // set_size
    if num_sets < 4:
        raise ValueError(
            f"check_criteria: need at least {4 * set_size} points per environment for sets of "
            f"{set_size}, got {num}"
        )
    rng = as_generator(seed)
    order = torch.as_tensor(rng.permutation(num))
    x, y = x[:, order], y[:, order]
    # C1: half of each environment's sets train the classifier, the other half test it
    sets = x[:, : num_sets * set_size].reshape(num_env, num_sets, set_size, dim)
    features = _moments(sets.reshape(-1, set_size, dim)).reshape(num_env, num_sets, -1)
    labels = torch.arange(num_env)[:, None].expand(-1, num_sets)
    half = num_sets // 2
    accuracy = _logistic_accuracy(
        features[:, :half].reshape(-1, features.shape[-1]).float(),
        labels[:, :half].reshape(-1),
        features[:, half:].reshape(-1, features.shape[-1]).float(),
        labels[:, half:].reshape(-1),
        num_env,
    )
    num_test = num_env * (num_sets - half)
    chance = 1.0 / num_env
    correct = round(accuracy * num_test)
    c1_p = float(stats.binom.sf(correct - 1, num_test, chance))
    # C2: pooled vs per-environment quadratic least squares, held-out halves
    split = num // 2
    phi_train, phi_test = (
        _quadratic(x[:, :split].reshape(-1, dim)),
        _quadratic(x[:, split:].reshape(-1, dim)),
    )
    y_train, y_test = y[:, :split].reshape(-1), y[:, split:].reshape(-1)
    pooled = (phi_test @ _ridge(phi_train, y_train) - y_test).square()
    width = phi_train.shape[1]
    by_env = torch.empty_like(pooled).reshape(num_env, -1)
    for e in range(num_env):
        coef = _ridge(phi_train.reshape(num_env, split, width)[e], y[e, :split])
        test = phi_test.reshape(num_env, -1, width)[e]
        by_env[e] = (test @ coef - y[e, split:]).square()
    by_env = by_env.reshape(-1)
    difference = (pooled - by_env).numpy()
    c2_p = float(stats.ttest_1samp(difference, 0.0, alternative="greater").pvalue)
    c2_p = 1.0 if math.isnan(c2_p) else c2_p
    return CriteriaReport(
        c1=c1_p < alpha,
        c2=c2_p < alpha,
        c1_accuracy=accuracy,
        c1_chance=chance,
        c1_p_value=c1_p,
        c2_mse_pooled=float(pooled.mean()),
        c2_mse_by_environment=float(by_env.mean()),
        c2_p_value=c2_p,
        alpha=alpha,
    )


def choose_model(report: CriteriaReport, flagged: bool = False) -> tuple[str, str]:
    """``("context" | "robust", reason)``: the predictive model where context can help and the
    target environment is not an extrapolation, else the robust context-free one."""
    if not report.context_can_help:
        return "robust", report.verdict
    if flagged:
        return "robust", (
            "the target environment's set embedding lies beyond the extrapolation threshold: "
            "the context model would extrapolate"
        )
    return "context", report.verdict
