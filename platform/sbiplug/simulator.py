"""The :class:`Simulator` base class: a prior and a batched forward model.

Randomness comes from a NumPy :class:`~numpy.random.Generator`, drawn row by row in row-major
order, so a simulation's result does not depend on how its rows are batched: simulating a batch
equals simulating its rows one after another from the same generator. The simulation engine
relies on this to give identical results locally, in chunks, resumed and on a dask cluster.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import torch
from torch import Tensor
from torch.distributions import Distribution

from sbiplug.toolkit.rng import SeedLike, as_generator, seeded

__all__ = ["Simulator", "SimulatorOutputError"]


class SimulatorOutputError(TypeError):
    """A simulator returned something other than a float tensor of the declared shape."""


class Simulator(ABC):
    """A prior over parameters and a batched, seeded forward model.

    Subclasses set ``name``, ``parameter_names`` and ``observation_shape``, build ``prior`` and
    implement :meth:`_simulate`. Optional: :meth:`reference_posterior`, :meth:`log_likelihood`,
    ``parameter_manifold``.
    """

    name: str = "simulator"
    parameter_names: tuple[str, ...] = ()
    observation_shape: tuple[int, ...] = ()
    parameter_manifold: str = "euclidean"

    @property
    @abstractmethod
    def prior(self) -> Distribution:
        """A torch distribution over parameters with event shape ``(num_parameters,)``."""

    @property
    def num_parameters(self) -> int:
        return len(self.parameter_names)

    @abstractmethod
    def _simulate(self, theta: Tensor, rng: np.random.Generator) -> Tensor:
        """Simulate one data set per row of ``theta``.

        Arguments:
            theta: Parameters, shape ``(n, num_parameters)``, validated.
            rng: Source of all randomness, drawn in row-major order.

        Returns:
            Data, shape ``(n, *observation_shape)``.
        """

    def simulate(self, theta: Tensor, *, seed: SeedLike = None) -> Tensor:
        """Simulate data for a batch of parameters.

        Arguments:
            theta: Parameters, shape ``(n, num_parameters)`` or ``(num_parameters,)``.
            seed: An int, a NumPy generator or ``None`` (seeded from torch's global RNG).

        Returns:
            Data, shape ``(n, *observation_shape)`` (``(*observation_shape,)`` for 1-D theta).
        """
        theta, single = self._check_theta(theta)
        x = self._simulate(theta, as_generator(seed))
        x = self._check_output(x, len(theta))
        return x[0] if single else x

    def __call__(self, theta: Tensor) -> Tensor:
        return self.simulate(theta)

    def sample_prior(self, num_samples: int, *, seed: int | None = None) -> Tensor:
        """Draw parameters from the prior, shape ``(num_samples, num_parameters)``."""
        if seed is None:
            return self.prior.sample((num_samples,))
        with seeded(seed):
            return self.prior.sample((num_samples,))

    def reference_posterior(
        self, x_o: Tensor, num_samples: int, *, seed: SeedLike = None
    ) -> Tensor:
        """Exact posterior draws for one observation, shape ``(num_samples, num_parameters)``.

        Raises:
            NotImplementedError: when the simulator has no exact posterior.
        """
        raise NotImplementedError(f"simulator {self.name!r} has no reference posterior")

    def log_likelihood(self, theta: Tensor, x: Tensor) -> Tensor:
        """log p(x | theta) for matching rows, shape ``(n,)``; optional."""
        raise NotImplementedError(f"simulator {self.name!r} has no tractable likelihood")

    @property
    def has_reference_posterior(self) -> bool:
        return type(self).reference_posterior is not Simulator.reference_posterior

    @property
    def has_log_likelihood(self) -> bool:
        return type(self).log_likelihood is not Simulator.log_likelihood

    # -- validation ---------------------------------------------------------------------------

    def _check_theta(self, theta: Tensor) -> tuple[Tensor, bool]:
        if not isinstance(theta, Tensor):
            raise TypeError(
                f"simulator {self.name!r}: theta must be a torch.Tensor of shape "
                f"(n, {self.num_parameters}), got {type(theta).__name__}"
            )
        single = theta.ndim == 1
        if single:
            theta = theta.unsqueeze(0)
        if theta.ndim != 2 or theta.shape[1] != self.num_parameters:
            raise ValueError(
                f"simulator {self.name!r}: theta must have shape (n, {self.num_parameters}) "
                f"for parameters {list(self.parameter_names)}, got {tuple(theta.shape)}"
            )
        theta = theta.to(torch.float32)
        support = self.prior.support
        inside = support.check(theta)
        if inside.ndim > 1:
            inside = inside.all(dim=-1)
        if not bool(inside.all()):
            bad = int((~inside).sum())
            raise ValueError(
                f"simulator {self.name!r}: {bad} of {len(theta)} rows of theta lie outside "
                f"the prior support {support}; first offending row: "
                f"{theta[~inside][0].tolist()}"
            )
        return theta, single

    def _check_output(self, x: object, num_rows: int) -> Tensor:
        expected = (num_rows, *self.observation_shape)
        if not isinstance(x, Tensor):
            raise SimulatorOutputError(
                f"simulator {self.name!r} returned {type(x).__name__}; expected a torch.Tensor "
                f"of shape {expected}"
            )
        if tuple(x.shape) != expected:
            raise SimulatorOutputError(
                f"simulator {self.name!r} returned shape {tuple(x.shape)}; expected {expected}"
            )
        if not x.is_floating_point():
            x = x.to(torch.float32)
        return x.to(torch.float32)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, parameters={list(self.parameter_names)}, "
            f"observation_shape={self.observation_shape})"
        )
