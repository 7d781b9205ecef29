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

from typing import Any

import torch
from torch import Tensor

from sbiplug import Simulator
from sbiplug.toolkit import OptionError, check_int, check_probability
from sbiplug_misspec.null import (
    SimulatedNull,
    resolve_data_features,
    smallest_null,
    too_small_message,
)
from sbiplug_misspec.regularizer import KernelName
from sbiplug_misspec.result import MisspecificationTest
from sbiplug_misspec.summaries import resolve_summary, summarise

__all__ = [
    "MisspecificationTest",
    "SimulatedNull",
    "misspecification_test",
    "resolve_summary",
    "summarise",
]


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
    if check_int("num_null", num_null) < smallest_null(alpha):
        raise OptionError(too_small_message(num_null, alpha))
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


def misspecification_test(
    summary: Any,
    simulator: Simulator,
    x_observed: Tensor,
    num_reference: int = 1000,
    num_null: int = 500,
    alpha: float = 0.05,
    kernel: KernelName = "imq",
    seed: int | None = None,
    data_features: Any = "auto",
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
        data_features: ``"auto"`` (default): blocks of fixed data features next to the
            summary block, chosen from x's shape: for sets ``(n, d)`` the noise's shape within
            each set (:mod:`sbiplug_misspec.data_features`); for vectors and time series
            ``(d,)`` the data vector itself and, when ``summary`` is a trained estimator or
            posterior, the noise's shape against replicates simulated at the posterior's fit
            (:mod:`sbiplug_misspec.residuals`); none for other shapes (e.g. images). The
            blocks are combined by their smallest p-value under the same simulated null.
            ``None``: the paper's test in summary space alone; or a callable ``x -> (n, F)``
            features (one extra block).

    Returns:
        A :class:`MisspecificationTest`; its ``message`` and ``plot()`` explain the decision.
    """
    x_observed = _check_inputs(simulator, x_observed, num_reference, num_null, alpha, kernel)
    resolve_summary(summary)  # fail on a bad summary before simulating anything
    resolve_data_features(data_features, simulator, summary)
    null_model, observed = SimulatedNull.build(
        summary,
        simulator,
        len(x_observed),
        num_reference=num_reference,
        num_null=num_null,
        kernel=kernel,
        seed=seed,
        x_extra=x_observed,
        data_features=data_features,
    )
    statistics = null_model.statistics([o[None] for o in observed])[0]
    return null_model.decide(statistics, alpha, observed)
