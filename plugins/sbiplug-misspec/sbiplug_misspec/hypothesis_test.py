"""The summary-space root-MMD misspecification test with a simulated null.

Schmitt, Bürkner, Köthe & Radev, *Detecting Model Misspecification in Amortized Bayesian
Inference with Neural Networks* (GCPR 2023, arXiv 2112.08866). H0: the N observed data sets come
from the model. With summaries h (the trained embedding net, in eval mode):

1. reference set R = {h(x_r)} of ``num_reference`` data sets simulated from the model;
2. statistic T = sqrt(MMD²_b(R, {h(x_obs_1), ..., h(x_obs_N)})) (biased MMD², 19-scale kernel);
3. null: for b = 1..B (``num_null``) simulate N *fresh* data sets from the model and compute
   T_b the same way; the biased statistic's level depends on N (through k(y, y)/N), so the null
   must use the observed N, and fresh data (not a bootstrap of R, which is anti-conservative);
4. p = (1 + #{T_b >= T}) / (1 + B); reject when p <= alpha.

Given R, T and the T_b are exchangeable under H0, so the test is exact at any B with
(1 + B) · alpha >= 1. All B · N null sets are simulated and summarised in one batch, and the
R–R kernel block, shared by every statistic, is computed once in float64.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from sbiplug import Simulator
from sbiplug.toolkit import (
    OptionError,
    check_int,
    check_probability,
    ensure_seed,
    monte_carlo_p_value,
)
from sbiplug_misspec.regularizer import KERNEL_SCALES, KernelName, kernel_from_distances

__all__ = [
    "MisspecificationTest",
    "SimulatedNull",
    "misspecification_test",
    "resolve_summary",
    "summarise",
]

# Rows of a cross-kernel block computed at once: bounds memory at ~2e7 float64 entries.
_BLOCK_ENTRIES = 20_000_000
_SUMMARY_CHUNK = 4096


@dataclass
class MisspecificationTest:
    """Outcome of :func:`misspecification_test`.

    Arguments:
        statistic: Root MMD between observed and reference summaries.
        p_value: (1 + #{null >= statistic}) / (1 + num_null).
        critical_value: Reject exactly when ``statistic > critical_value``.
        rejected: Whether H0 (the model produced the observations) is rejected at ``alpha``.
        null_statistics: The simulated null, shape ``(num_null,)``.
        alpha: The test's level.
        num_observed: N, the number of observed data sets.
        attrs: ``num_reference``, ``num_null``, ``kernel`` and the kernel's ``scales``.
    """

    statistic: float
    p_value: float
    critical_value: float
    rejected: bool
    null_statistics: Tensor
    alpha: float
    num_observed: int
    attrs: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (
            f"MisspecificationTest(statistic={self.statistic:.4g}, p_value={self.p_value:.4g}, "
            f"critical_value={self.critical_value:.4g}, rejected={self.rejected}, "
            f"alpha={self.alpha}, num_observed={self.num_observed}, "
            f"num_null={len(self.null_statistics)}, "
            f"num_reference={self.attrs.get('num_reference')}, "
            f"kernel={self.attrs.get('kernel')!r})"
        )


def _is_identity(module: nn.Module) -> bool:
    """Whether ``module`` only standardises or passes x through (no learned summary)."""
    if isinstance(module, nn.Identity):
        return True
    if isinstance(module, nn.Sequential):
        return all(_is_identity(m) or type(m).__name__ == "Standardize" for m in module)
    return False


def resolve_summary(summary: Any) -> Callable[[Tensor], Tensor]:
    """The summary function behind a trainer, a posterior, a network or a callable.

    Raises:
        ValueError: for a trainer or posterior without a (non-identity) embedding net.
        RuntimeError: for a trainer that has not been trained.
        TypeError: for anything else that is not callable.
    """
    from sbiplug.sbi_internals import is_trainer, trained_network  # imports sbi: only here

    net = None
    if is_trainer(summary):
        net = trained_network(summary)
        if net is None:
            raise RuntimeError(
                f"summary: the {type(summary).__name__} trainer has not been trained yet"
            )
    elif hasattr(summary, "posterior_estimator"):  # sbi posterior
        net = summary.posterior_estimator
    if net is not None:
        embedding = getattr(net, "embedding_net", None)
        if embedding is None or _is_identity(embedding):
            raise ValueError(
                f"summary: {type(summary).__name__} has no embedding (summary) net, so there is "
                "no summary space to test in; train with an embedding net (e.g. estimator "
                "'npe_mmd') or pass a callable x -> summaries"
            )
        return embedding
    if callable(summary):
        return summary
    raise TypeError(
        "summary must be a trained sbi trainer or posterior with an embedding net, or a "
        f"callable x -> summaries; got {type(summary).__name__}"
    )


def summarise(summary: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """Summaries of ``x`` in eval mode, without gradients, as float64 ``(n, S)``."""
    modules = [summary] if isinstance(summary, nn.Module) else []
    modes = [m.training for m in modules]
    for module in modules:
        module.eval()  # dropout off: reference, null and observed alike
    try:
        with torch.no_grad():
            parts = [summary(chunk) for chunk in torch.split(x, _SUMMARY_CHUNK)]
    finally:
        for module, mode in zip(modules, modes):
            module.train(mode)
    summaries = torch.cat(parts).to(torch.float64)
    return summaries.reshape(len(x), -1)


def _mean_cross_kernel(
    groups: Tensor, reference: Tensor, kernel: KernelName, scales: tuple[float, ...]
) -> Tensor:
    """Mean kernel value between each group and the reference set.

    Arguments:
        groups: Shape ``(G, N, S)``.
        reference: Shape ``(M, S)``.

    Returns:
        Shape ``(G,)``.
    """
    num_groups, size, dim = groups.shape
    rows = groups.reshape(-1, dim)
    reference_norm = reference.square().sum(-1)
    step = max(size, (_BLOCK_ENTRIES // max(len(reference), 1)) // size * size)
    sums = []
    for block in torch.split(rows, step):
        distances = (
            block.square().sum(-1, keepdim=True) + reference_norm - 2.0 * block @ reference.T
        ).clamp_min(0.0)
        sums.append(kernel_from_distances(distances, kernel, scales).sum(-1))
    return torch.cat(sums).reshape(num_groups, size).mean(-1) / len(reference)


def _mean_self_kernel(groups: Tensor, kernel: KernelName, scales: tuple[float, ...]) -> Tensor:
    """Mean kernel value within each group, diagonal included: shape ``(G,)`` from ``(G, N, S)``."""
    norms = groups.square().sum(-1)
    distances = (
        norms[:, :, None] + norms[:, None, :] - 2.0 * groups @ groups.transpose(1, 2)
    ).clamp_min(0.0)
    return kernel_from_distances(distances, kernel, scales).mean(dim=(1, 2))


def _root_mmd(
    groups: Tensor, reference: Tensor, reference_term: Tensor, kernel: KernelName
) -> Tensor:
    """Root biased MMD between each group ``(G, N, S)`` and the reference ``(M, S)``."""
    squared = (
        reference_term
        + _mean_self_kernel(groups, kernel, KERNEL_SCALES)
        - 2.0 * _mean_cross_kernel(groups, reference, kernel, KERNEL_SCALES)
    )
    return squared.clamp_min(0.0).sqrt()


def _smallest_null(alpha: float) -> int:
    return math.ceil(1.0 / alpha - 1.0 - 1e-9)


def _too_small_message(num_null: Any, alpha: float) -> str:
    return (
        f"num_null={num_null!r} is too small for alpha={alpha}: the p-value "
        "(1 + #{null >= T}) / (1 + num_null) can reach alpha only when "
        f"(1 + num_null) * alpha >= 1, i.e. num_null >= {_smallest_null(alpha)} (use hundreds)"
    )


def _check_inputs(
    simulator: Simulator, x_observed: Tensor, num_reference: int, num_null: int, alpha: float,
    kernel: str,
) -> Tensor:  # fmt: skip
    if not isinstance(simulator, Simulator):
        raise TypeError(f"simulator must be an sbiplug Simulator, got {type(simulator).__name__}")
    if kernel not in ("imq", "gaussian"):
        raise ValueError(f"kernel must be 'imq' or 'gaussian', got {kernel!r}")
    check_probability("alpha", alpha)
    check_int("num_reference", num_reference, minimum=2)
    if check_int("num_null", num_null) < _smallest_null(alpha):
        raise OptionError(_too_small_message(num_null, alpha))
    x_observed = torch.as_tensor(x_observed, dtype=torch.float32)
    shape = tuple(simulator.observation_shape)
    if tuple(x_observed.shape) == shape:
        x_observed = x_observed.unsqueeze(0)
    if x_observed.ndim != len(shape) + 1 or tuple(x_observed.shape[1:]) != shape:
        raise ValueError(
            f"x_observed has shape {tuple(x_observed.shape)}; expected (N, *{shape}) or {shape} "
            f"for simulator {simulator.name!r} with observation_shape {shape}"
        )
    if len(x_observed) < 1:
        raise ValueError("x_observed holds no data sets; expected N >= 1")
    return x_observed


class SimulatedNull:
    """Reference summaries and a simulated null for testing N observed data sets at a time.

    Build once, then test many groups of N observations against the same model with
    :meth:`test` (valid conditionally on the reference set and null). :func:`misspecification_test`
    builds a fresh one per call. Arguments are those of :func:`misspecification_test`, with
    ``num_observed`` = N; ``x_extra`` (shape ``(n, *observation_shape)``) is summarised in the same
    pass and returned by :meth:`build`, to save a second pass over the network.
    """

    def __init__(
        self,
        summary: Callable[[Tensor], Tensor],
        reference: Tensor,
        null_statistics: Tensor,
        reference_term: Tensor,
        num_observed: int,
        kernel: KernelName,
    ) -> None:
        self.summary = summary
        self.reference = reference
        self.null_statistics = null_statistics
        self.reference_term = reference_term
        self.num_observed = num_observed
        self.kernel: KernelName = kernel

    @classmethod
    def build(
        cls,
        summary: Any,
        simulator: Simulator,
        num_observed: int,
        num_reference: int = 1000,
        num_null: int = 500,
        kernel: KernelName = "imq",
        seed: int | None = None,
        x_extra: Tensor | None = None,
    ) -> tuple[SimulatedNull, Tensor | None]:
        """Simulate, summarise and compute the null; returns it and ``x_extra``'s summaries."""
        summary_fn = resolve_summary(summary)
        sequence = np.random.SeedSequence(ensure_seed(seed))
        prior_seed, simulation_seed = (int(s.generate_state(1)[0]) for s in sequence.spawn(2))
        # Reference and null data sets in one simulation batch: M + B·N draws from the model.
        total = num_reference + num_null * num_observed
        theta = simulator.sample_prior(total, seed=prior_seed)
        x_model = simulator.simulate(theta, seed=simulation_seed)
        if x_extra is not None:
            x_model = torch.cat([x_model, x_extra.to(x_model.dtype)])
        summaries = summarise(summary_fn, x_model)
        if not torch.isfinite(summaries).all():
            raise ValueError("summary produced non-finite values; cannot compute the MMD")
        reference = summaries[:num_reference]
        null_groups = summaries[num_reference:total].reshape(num_null, num_observed, -1)
        reference_term = _mean_self_kernel(reference[None], kernel, KERNEL_SCALES)[0]
        null = _root_mmd(null_groups, reference, reference_term, kernel)
        null_model = cls(summary_fn, reference, null, reference_term, num_observed, kernel)
        return null_model, (summaries[total:] if x_extra is not None else None)

    def statistics(self, observed_summaries: Tensor) -> Tensor:
        """Root MMD of groups of N summaries to the reference: ``(G, N, S)`` -> ``(G,)``."""
        groups = observed_summaries.to(torch.float64)
        return _root_mmd(groups, self.reference, self.reference_term, self.kernel)

    def test(self, x_observed: Tensor, alpha: float = 0.05) -> MisspecificationTest:
        """Test N observed data sets, shape ``(N, *observation_shape)``."""
        observed = summarise(self.summary, x_observed)
        return self.decide(float(self.statistics(observed[None])[0]), alpha)

    def decide(self, statistic: float, alpha: float = 0.05) -> MisspecificationTest:
        """The p-value, critical value and decision for an observed root MMD."""
        null = self.null_statistics
        num_null = len(null)
        p_value = monte_carlo_p_value(statistic, null.detach().cpu().numpy())
        exceed = int((null >= statistic).sum())
        # Reject iff #{T_b >= T} <= k; the (k+1)-th largest null value is the critical value.
        k = math.floor(alpha * (1 + num_null) + 1e-9) - 1
        if k < 0:
            raise ValueError(_too_small_message(num_null, alpha))
        critical_value = float(torch.sort(null, descending=True).values[k])
        return MisspecificationTest(
            statistic=statistic,
            p_value=p_value,
            critical_value=critical_value,
            rejected=exceed <= k,
            null_statistics=null.to(torch.float32),
            alpha=alpha,
            num_observed=self.num_observed,
            attrs={
                "num_reference": len(self.reference),
                "num_null": num_null,
                "kernel": self.kernel,
                "scales": KERNEL_SCALES,
                "null": "simulated, N fresh data sets per replicate",
            },
        )


def misspecification_test(
    summary: Any,
    simulator: Simulator,
    x_observed: Tensor,
    num_reference: int = 1000,
    num_null: int = 500,
    alpha: float = 0.05,
    kernel: KernelName = "imq",
    seed: int | None = None,
) -> MisspecificationTest:
    """Test whether the observed data sets could come from ``simulator``.

    Arguments:
        summary: A trained sbi trainer or posterior with an embedding net (e.g. ``npe_mmd``),
            or any callable mapping data ``(n, *observation_shape)`` to summaries ``(n, S)``.
        simulator: The model the estimator was trained on (prior and forward model).
        x_observed: N >= 1 observed data sets, shape ``(N, *observation_shape)``
            (or ``observation_shape`` for N = 1).
        num_reference: M, reference data sets simulated from the model.
        num_null: B, null replicates, each of N fresh data sets from the model.
        alpha: The level.
        kernel: ``"imq"`` or ``"gaussian"`` mixture over the 19 scales ``KERNEL_SCALES``.
        seed: Seed for the reference and null simulations.

    Returns:
        A :class:`MisspecificationTest`.
    """
    x_observed = _check_inputs(simulator, x_observed, num_reference, num_null, alpha, kernel)
    resolve_summary(summary)  # fail on a bad summary before simulating anything
    null_model, observed = SimulatedNull.build(
        summary,
        simulator,
        len(x_observed),
        num_reference=num_reference,
        num_null=num_null,
        kernel=kernel,
        seed=seed,
        x_extra=x_observed,
    )
    statistic = float(null_model.statistics(observed[None])[0])
    return null_model.decide(statistic, alpha)
