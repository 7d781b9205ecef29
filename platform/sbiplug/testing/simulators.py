"""Conformance check for simulators: shapes, prior, seeds, batching, validation."""

from __future__ import annotations

import time
import warnings
from typing import TYPE_CHECKING, Any

from sbiplug.testing._support import (
    all_finite,
    call,
    fail,
    resolve_simulator,
)

if TYPE_CHECKING:
    from torch import Tensor

    from sbiplug.simulator import Simulator

__all__ = ["check_simulator"]


def check_simulator(
    simulator: str | Simulator, *, num_simulations: int = 20, seed: int = 0
) -> dict[str, Any]:
    """Check a simulator against the :class:`~sbiplug.simulator.Simulator` contract.

    Checks: the prior is a torch distribution sbi accepts with event shape
    ``(num_parameters,)``; ``simulate`` returns finite float tensors of shape
    ``(n, *observation_shape)``; the same seed gives the same data and simulating a batch equals
    simulating its rows one after another from one generator; bad ``theta`` (wrong shape,
    outside a bounded prior support) raises ``ValueError``; ``reference_posterior``, when
    implemented, returns seeded draws of shape ``(n, num_parameters)`` inside the support.

    Arguments:
        simulator: A registered name or a :class:`~sbiplug.simulator.Simulator`.
        num_simulations: Rows simulated.
        seed: Seed of every draw.

    Returns:
        What was measured: names, shapes, seconds per simulation, whether a reference
        posterior was checked.
    """
    import numpy as np
    import torch
    from torch.distributions import Distribution

    from sbiplug.specs import MANIFOLDS

    simulator, subject = resolve_simulator(simulator, None)
    names = tuple(simulator.parameter_names)
    if not names or len(set(names)) != len(names):
        raise fail(subject, f"parameter_names must be unique and non-empty, got {names}")
    if simulator.parameter_manifold not in MANIFOLDS:
        raise fail(subject, f"parameter_manifold {simulator.parameter_manifold!r} unknown")

    prior = simulator.prior
    if not isinstance(prior, Distribution):
        raise fail(subject, f"prior is a {type(prior).__name__}, not a torch Distribution")
    theta = call(subject, "sample_prior", simulator.sample_prior, num_simulations, seed=seed)
    if tuple(theta.shape) != (num_simulations, len(names)):
        raise fail(
            subject,
            f"prior draws have shape {tuple(theta.shape)}; expected "
            f"({num_simulations}, {len(names)}) for parameters {list(names)}",
        )
    if not torch.equal(theta, simulator.sample_prior(num_simulations, seed=seed)):
        raise fail(subject, "sample_prior(seed=...) is not reproducible")
    if not all_finite(prior.log_prob(theta)):
        raise fail(subject, "prior.log_prob is not finite at prior draws")
    try:
        from sbi.utils.user_input_checks import process_prior

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            process_prior(prior)
    except Exception as error:
        raise fail(subject, f"sbi rejects the prior: {type(error).__name__}: {error}") from error

    start = time.perf_counter()
    x = call(subject, "simulate", simulator.simulate, theta, seed=seed)
    seconds = (time.perf_counter() - start) / num_simulations
    expected = (num_simulations, *simulator.observation_shape)
    if not isinstance(x, torch.Tensor) or tuple(x.shape) != expected:
        raise fail(subject, f"simulate returned shape {tuple(x.shape)}; expected {expected}")
    if not x.is_floating_point():
        raise fail(subject, f"simulate returned dtype {x.dtype}; expected a float tensor")
    if not all_finite(x):
        raise fail(subject, f"simulate returned {int((~torch.isfinite(x)).sum())} NaN/inf values")
    if not torch.equal(x, simulator.simulate(theta, seed=seed)):
        raise fail(subject, "simulate(theta, seed=s) is not reproducible")
    rows = min(num_simulations, 5)
    generator = np.random.default_rng(seed)
    looped = torch.cat(
        [
            call(subject, "simulate", simulator.simulate, theta[i : i + 1], seed=generator)
            for i in range(rows)
        ]
    )
    batched = simulator.simulate(theta[:rows], seed=seed)
    if not torch.allclose(looped, batched, rtol=1e-5, atol=1e-6):
        raise fail(
            subject,
            "simulating a batch differs from simulating its rows one after another from the "
            f"same generator (largest difference {float((looped - batched).abs().max()):.3g})",
        )
    single = call(subject, "simulate(1-D theta)", simulator.simulate, theta[0], seed=seed)
    if tuple(single.shape) != tuple(simulator.observation_shape):
        raise fail(
            subject,
            f"simulate(1-D theta) returned shape {tuple(single.shape)}; expected "
            f"{tuple(simulator.observation_shape)}",
        )
    _expect_value_error(subject, "theta of the wrong shape", simulator, theta[:, :-1])
    outside = _point_outside_support(prior, theta[:1])
    if outside is not None:
        _expect_value_error(subject, "theta outside the prior support", simulator, outside)

    has_reference = simulator.has_reference_posterior
    if has_reference:
        draws = call(
            subject, "reference_posterior", simulator.reference_posterior, x[0], 10, seed=seed
        )
        if tuple(draws.shape) != (10, len(names)):
            raise fail(
                subject,
                f"reference_posterior returned shape {tuple(draws.shape)}; expected "
                f"(10, {len(names)})",
            )
        if not torch.equal(draws, simulator.reference_posterior(x[0], 10, seed=seed)):
            raise fail(subject, "reference_posterior(seed=...) is not reproducible")
        if not all_finite(prior.log_prob(draws.float())):
            raise fail(subject, "reference_posterior draws fall outside the prior support")
    return {
        "name": simulator.name,
        "parameter_names": names,
        "observation_shape": tuple(simulator.observation_shape),
        "seconds_per_simulation": seconds,
        "reference_posterior": has_reference,
    }


def _expect_value_error(subject: str, what: str, simulator: Simulator, theta: Tensor) -> None:
    try:
        simulator.simulate(theta, seed=0)
    except ValueError:
        return
    raise fail(subject, f"simulate accepted {what} instead of raising ValueError")


def _point_outside_support(prior: Any, theta: Tensor) -> Tensor | None:
    """A parameter outside a bounded prior support, or ``None`` when the support is unbounded."""
    import torch

    for scale in (1e6, -1e6):
        candidate = theta + scale
        inside = prior.support.check(candidate)
        if not bool(torch.as_tensor(inside).all()):
            return candidate
    return None


# -- estimators -------------------------------------------------------------------------------
