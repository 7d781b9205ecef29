"""Helpers shared by the built-in diagnostics: seeding, test pairs, posterior draws, figures."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import xarray as xr
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from torch import Tensor

    from sbiplug.diagnostic import DiagnosticContext

from sbiplug.seeding import derive_seed, seeded

__all__ = [
    "HELD_OUT_KEY",
    "DiagnosticInputError",
    "derive_seed",
    "dkw_epsilon",
    "figure_and_axes",
    "parameter_names",
    "posterior_draws",
    "resolve_progress",
    "resolve_seed",
    "sbi_budget_warnings_silenced",
    "seeded",
    "test_pairs",
]

HELD_OUT_KEY = "held_out"
"""``context.extras[HELD_OUT_KEY] = (theta, x)``: held-out pairs for calibration checks."""


class DiagnosticInputError(ValueError):
    """A diagnostic's context lacks what it needs; raised before any work starts."""


def resolve_seed(option: int | None, context: DiagnosticContext) -> int:
    """The diagnostic's own ``seed`` option, else the context's, else 0."""
    if option is not None:
        return int(option)
    if context.seed is not None:
        return int(context.seed)
    return 0


def parameter_names(context: DiagnosticContext, num_parameters: int) -> list[str]:
    """Parameter names for coordinates; generic names when the context has none that fit."""
    names = context.parameter_names
    if len(names) != num_parameters:
        names = [f"theta_{i}" for i in range(num_parameters)]
    return names


def test_pairs(
    context: DiagnosticContext, num_pairs: int, seed: int, diagnostic: str
) -> tuple[Tensor, Tensor, str]:
    """Parameters and data to test calibration on.

    Held-out pairs (``context.extras["held_out"] = (theta, x)``) are used first; otherwise
    fresh pairs are drawn from the simulator's prior and forward model. Training pairs are a
    last resort (with a warning): a posterior that over-fits them looks better than it is.

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


def require_posterior(context: DiagnosticContext, diagnostic: str) -> Any:
    """The context's posterior, or a clear error naming the diagnostic."""
    if context.posterior is None:
        raise DiagnosticInputError(
            f"diagnostic {diagnostic!r} needs a posterior (context.posterior is None)"
        )
    return context.posterior


def require_observations(context: DiagnosticContext, diagnostic: str) -> Tensor:
    """The observations as a batch ``(num_observations, *observation_shape)``."""
    import torch

    observations = context.observations
    if observations is None or len(observations) == 0:
        raise DiagnosticInputError(
            f"diagnostic {diagnostic!r} needs observations (context.observations is empty)"
        )
    if not isinstance(observations, torch.Tensor):
        observations = torch.as_tensor(observations)
    simulator = context.simulator
    if simulator is not None and tuple(observations.shape) == tuple(simulator.observation_shape):
        observations = observations.unsqueeze(0)  # a single observation without batch dim
    return observations.float()


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


def resolve_progress(option: bool | None, context: DiagnosticContext) -> bool:
    """The diagnostic's own ``show_progress_bars`` option, else the context's."""
    return context.show_progress_bars if option is None else option


SBI_BUDGET_WARNINGS = (
    ".*should be on the order of 100s.*",
    ".*less than 100 samples.*",
    ".*[Bb]atched sampling.*",
    ".*Capping max_sampling_batch_size.*",
    ".*unnormalized.*",
)
"""sbi's advice on budgets and sampling paths; a diagnostic's budget is the user's choice."""


@contextmanager
def sbi_budget_warnings_silenced() -> Iterator[None]:
    """Silence :data:`SBI_BUDGET_WARNINGS` inside the block (other warnings still show)."""
    with warnings.catch_warnings():
        for message in SBI_BUDGET_WARNINGS:
            warnings.filterwarnings("ignore", message=message)
        yield


def dkw_epsilon(num_values: int, alpha: float) -> float:
    """Half-width of the Dvoretzky-Kiefer-Wolfowitz simultaneous ``1 - alpha`` ECDF band."""
    return math.sqrt(math.log(2.0 / alpha) / (2.0 * num_values))


def figure_and_axes(ax: Axes | None) -> tuple[Figure, Axes]:
    """``ax`` and its figure, or a new figure with one axes."""
    if ax is not None:
        return ax.figure, ax  # type: ignore[return-value]
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(5.0, 3.6))
    return figure, ax


def require_variables(data: xr.Dataset | None, names: tuple[str, ...], diagnostic: str) -> None:
    """Raise when a result's dataset lacks what its plot needs."""
    missing = [n for n in names if data is None or n not in data]
    if missing:
        raise ValueError(
            f"cannot plot diagnostic {diagnostic!r}: its data lacks variables {missing}"
        )
