"""What a diagnostic takes from its context: seed, progress bars, posterior, observations, pairs.

Each helper either returns what the diagnostic needs or raises :class:`DiagnosticInputError`
naming the diagnostic and what is missing, before any expensive work starts. The helpers read a
:class:`sbiplug.DiagnosticContext` by its attributes (the toolkit imports no other host module).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Protocol

from sbiplug.toolkit.names import parameter_names_or_default
from sbiplug.toolkit.rng import derive_seed

if TYPE_CHECKING:
    from torch import Tensor

__all__ = [
    "HELD_OUT_KEY",
    "DiagnosticInputError",
    "calibration_pairs",
    "parameter_names",
    "posterior_draws",
    "require_observations",
    "require_posterior",
    "require_simulator",
    "resolve_progress",
    "resolve_seed",
]

HELD_OUT_KEY = "held_out"
"""``context.extras[HELD_OUT_KEY] = (theta, x)``: held-out pairs for calibration checks."""


class DiagnosticInputError(ValueError):
    """A diagnostic's context lacks what it needs; raised before any work starts."""


class _Context(Protocol):
    """The attributes of :class:`sbiplug.DiagnosticContext` that these helpers read."""

    simulator: Any
    posterior: Any
    theta: Any
    x: Any
    observations: Any
    seed: int | None
    show_progress_bars: bool
    extras: dict[str, Any]

    @property
    def parameter_names(self) -> list[str]: ...


def resolve_seed(option: int | None, context: _Context) -> int:
    """The diagnostic's own ``seed`` option, else the context's, else 0."""
    if option is not None:
        return int(option)
    if context.seed is not None:
        return int(context.seed)
    return 0


def resolve_progress(option: bool | None, context: _Context) -> bool:
    """The diagnostic's own ``show_progress_bars`` option, else the context's."""
    return context.show_progress_bars if option is None else bool(option)


def parameter_names(context: _Context, num_parameters: int) -> list[str]:
    """The context's parameter names when they fit ``num_parameters``, else ``theta_1, ...``."""
    return parameter_names_or_default(context.parameter_names, num_parameters)


def require_posterior(context: _Context, diagnostic: str) -> Any:
    """The context's posterior, or a :class:`DiagnosticInputError` naming the diagnostic."""
    if context.posterior is None:
        raise DiagnosticInputError(
            f"diagnostic {diagnostic!r} needs a posterior (context.posterior is None)"
        )
    return context.posterior


def require_simulator(context: _Context, diagnostic: str) -> Any:
    """The context's simulator, or a :class:`DiagnosticInputError` naming the diagnostic."""
    if context.simulator is None:
        raise DiagnosticInputError(
            f"diagnostic {diagnostic!r} needs a simulator (context.simulator is None)"
        )
    return context.simulator


def require_observations(
    context: _Context,
    diagnostic: str,
    observation_shape: tuple[int, ...] | None = None,
) -> Tensor:
    """The observations as a float batch ``(num_observations, *observation_shape)``.

    Arguments:
        context: The diagnostic context.
        diagnostic: The diagnostic's name, for error messages.
        observation_shape: The shape of one observation, when the diagnostic needs it checked:
            a batch of another shape is then an error. By default the simulator's shape is only
            used to add the batch dimension to a single observation.

    Raises:
        DiagnosticInputError: when there are no observations or their shape does not fit.
    """
    import torch

    observations = context.observations
    if observations is None or len(observations) == 0:
        raise DiagnosticInputError(
            f"diagnostic {diagnostic!r} needs observations and the context has no observations "
            "(context.observations is empty)"
        )
    observations = torch.as_tensor(observations)
    shape = observation_shape
    if shape is None and context.simulator is not None:
        shape = context.simulator.observation_shape
    if shape is not None and tuple(observations.shape) == tuple(shape):
        observations = observations.unsqueeze(0)  # a single observation without batch dim
    if observation_shape is not None and tuple(observations.shape[1:]) != tuple(shape):
        raise DiagnosticInputError(
            f"diagnostic {diagnostic!r}: observations of shape {tuple(observations.shape)} "
            f"do not match one observation of shape {tuple(shape)}: expected (n, *{tuple(shape)})"
        )
    return observations.float()


def calibration_pairs(
    context: _Context, num_pairs: int, seed: int, diagnostic: str
) -> tuple[Tensor, Tensor, str]:
    """Parameters and data to test calibration on.

    Held-out pairs (``context.extras["held_out"] = (theta, x)``) are used first; otherwise
    fresh pairs are drawn from the simulator's prior and forward model. Training pairs are a
    last resort (with a warning): a posterior that over-fits them looks better than it is.
    Pairs whose data are not finite are dropped, with a warning.

    Arguments:
        context: The diagnostic context.
        num_pairs: How many pairs to return (fewer when fewer held-out pairs exist).
        seed: Seed for drawing fresh pairs.
        diagnostic: The diagnostic's name, for error messages.

    Returns:
        ``theta`` of shape ``(n, num_parameters)``, ``x`` of shape ``(n, *observation_shape)``
        and where they came from (``"held_out"``, ``"simulated"`` or ``"training"``).
    """
    import torch

    if num_pairs < 1:
        raise DiagnosticInputError(f"diagnostic {diagnostic!r}: num_runs must be >= 1")
    held_out = context.extras.get(HELD_OUT_KEY)
    if held_out is not None:
        theta, x = held_out
        _check_pairs(theta, x, diagnostic, f"context.extras[{HELD_OUT_KEY!r}]")
        theta, x, source = theta[:num_pairs], x[:num_pairs], "held_out"
    elif context.simulator is not None:
        simulator = context.simulator
        theta = simulator.sample_prior(num_pairs, seed=derive_seed(seed, "prior"))
        x = simulator.simulate(theta, seed=derive_seed(seed, "simulate"))
        source = "simulated"
    elif context.theta is not None and context.x is not None:
        _check_pairs(context.theta, context.x, diagnostic, "context.theta / context.x")
        warnings.warn(
            f"diagnostic {diagnostic!r}: no simulator and no held-out pairs; using the "
            "training simulations, which overstates calibration of an over-fitted posterior",
            stacklevel=3,
        )
        generator = torch.Generator().manual_seed(derive_seed(seed, "subset"))
        index = torch.randperm(len(context.theta), generator=generator)[:num_pairs]
        theta, x, source = context.theta[index], context.x[index], "training"
    else:
        raise DiagnosticInputError(
            f"diagnostic {diagnostic!r} needs parameter/data pairs: a simulator in the context, "
            f"held-out pairs in context.extras[{HELD_OUT_KEY!r}] = (theta, x), or training "
            "simulations (context.theta and context.x)"
        )
    # sbi's run_sbc / run_tarp silently drop pairs with NaN or inf data; drop them here,
    # visibly, so that theta and the results stay aligned.
    finite = torch.isfinite(x.reshape(len(x), -1)).all(dim=1)
    if not bool(finite.all()):
        warnings.warn(
            f"diagnostic {diagnostic!r}: dropped {int((~finite).sum())} of {len(x)} pairs "
            "whose data are not finite",
            stacklevel=3,
        )
        theta, x = theta[finite], x[finite]
    if len(theta) == 0:
        raise DiagnosticInputError(f"diagnostic {diagnostic!r}: no pair has finite data")
    return theta.float(), x.float(), source


def _check_pairs(theta: Any, x: Any, diagnostic: str, where: str) -> None:
    import torch

    if not isinstance(theta, torch.Tensor) or not isinstance(x, torch.Tensor):
        raise DiagnosticInputError(f"diagnostic {diagnostic!r}: {where} must be two tensors")
    if theta.ndim != 2 or len(theta) != len(x) or len(theta) == 0:
        raise DiagnosticInputError(
            f"diagnostic {diagnostic!r}: {where} must have shapes (n, num_parameters) and "
            f"(n, ...) with n > 0, got {tuple(theta.shape)} and {tuple(x.shape)}"
        )


def posterior_draws(
    posterior: Any, xs: Tensor, num_samples: int, show_progress_bars: bool
) -> Tensor:
    """Draws from the posterior of each row of ``xs``, shape ``(num_samples, len(xs), D)``.

    Uses ``sample_batched`` where the posterior has it (sbi's own fallback otherwise).
    """
    from sbi.utils.diagnostics_utils import get_posterior_samples_on_batch

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Bb]atched sampling.*")
        return get_posterior_samples_on_batch(
            xs, posterior, (num_samples,), show_progress_bar=show_progress_bars
        )
