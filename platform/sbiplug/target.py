"""The :class:`Target` base class: an unnormalised density family log p~(x | c).

Used by TRADE (Wahl et al., arXiv 2410.19492): ``log_density`` must be differentiable in both
``x`` and the external condition ``c`` (a temperature, a likelihood power, a coupling).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from torch import Tensor

__all__ = ["Target"]


class Target(ABC):
    """An unnormalised density family over ``x`` in R^dim indexed by a scalar condition ``c``.

    Subclasses set ``name``, ``dim``, ``condition_range`` (low, high) and ``base_condition``.
    """

    name: str = "target"
    dim: int = 1
    condition_name: str = "c"
    condition_range: tuple[float, float] = (1.0, 1.0)
    base_condition: float = 1.0

    @abstractmethod
    def log_density(self, x: Tensor, c: Tensor) -> Tensor:
        """Unnormalised log p~(x | c).

        Arguments:
            x: Points, shape ``(n, dim)``.
            c: Conditions, shape ``(n, 1)`` or broadcastable to it.

        Returns:
            Log densities, shape ``(n,)``.
        """

    def sample(self, num_samples: int, c: float) -> Tensor:
        """Exact (ground-truth) draws at condition ``c``, shape ``(num_samples, dim)``; optional."""
        raise NotImplementedError(f"target {self.name!r} has no exact sampler")

    @property
    def has_sampler(self) -> bool:
        return type(self).sample is not Target.sample
