"""Shared pieces of the conformance checks: failures that name the subject, small defaults."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import Tensor

    from sbiplug.simulator import Simulator

__all__ = [
    "DEFAULT_TRAIN_OPTIONS",
    "SMALL_SIMULATOR_OPTIONS",
    "all_finite",
    "call",
    "fail",
    "resolve_simulator",
    "seeded",
]

DEFAULT_TRAIN_OPTIONS: dict[str, Any] = {
    "max_num_epochs": 10,
    "training_batch_size": 50,
    "show_train_summary": False,
}
"""What :func:`check_estimator` trains with unless ``train_options`` say otherwise."""

SMALL_SIMULATOR_OPTIONS: dict[str, dict[str, Any]] = {
    "gaussian_linear": {"dim": 2},
    "gaussian_linear_uniform": {"dim": 2},
}


def fail(subject: str, problem: str) -> AssertionError:
    return AssertionError(f"{subject}: {problem}")


def resolve_simulator(
    simulator: str | Simulator, options: dict[str, Any] | None
) -> tuple[Simulator, str]:
    from sbiplug.registry import make_simulator
    from sbiplug.simulator import Simulator

    if isinstance(simulator, Simulator):
        if options:
            raise ValueError("simulator_options apply only when the simulator is given by name")
        return simulator, f"simulator {simulator.name!r}"
    if not isinstance(simulator, str):
        raise TypeError(
            f"simulator must be a registered name or an sbiplug.Simulator, got "
            f"{type(simulator).__name__}"
        )
    built = make_simulator(simulator, **(options or {}))
    if not isinstance(built, Simulator):
        raise fail(f"simulator {simulator!r}", f"built a {type(built).__name__}")
    return built, f"simulator {simulator!r}"


def call(subject: str, what: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``function(*args, **kwargs)``; an exception becomes an AssertionError naming ``what``."""
    try:
        return function(*args, **kwargs)
    except Exception as error:
        raise fail(subject, f"{what} raised {type(error).__name__}: {error}") from error


def all_finite(value: Tensor) -> bool:
    import torch

    return bool(torch.isfinite(value).all())


# -- simulators -------------------------------------------------------------------------------


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """:func:`sbiplug.toolkit.seeded`, imported on use: this package must not import torch."""
    from sbiplug.toolkit import seeded as seeded_globally

    with seeded_globally(seed):
        yield
