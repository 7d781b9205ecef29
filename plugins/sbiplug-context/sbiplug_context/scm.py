"""A linear-Gaussian structural model with environments, for context-aware prediction.

Environment e (a source node) has a shift a_e ∈ R^d. Inputs X ~ N(a_e, I_d) and
Y = (w + γ a_e)ᵀ X + ε, ε ~ N(0, σ²): the environment moves the input distribution (criterion
C1 of Müller et al., arXiv 2312.10107) and the slope of Y on X (criterion C2). Variants switch
one off: ``"no_input_shift"`` draws X ~ N(0, I) in every environment (C1 false: the set of
inputs says nothing about e); ``"no_slope_shift"`` sets γ = 0 (C2 false: Y | X is the same in
every environment). ``shift_range`` bounds the training shifts; :meth:`environments` with
``outside=True`` draws shifts beyond it (out-of-distribution environments).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from sbiplug.toolkit import as_generator

__all__ = ["VARIANTS", "EnvironmentSCM"]

VARIANTS = ("both", "no_input_shift", "no_slope_shift")


@dataclass
class EnvironmentSCM:
    """The model; see the module docstring.

    Arguments:
        variant: ``"both"`` (C1 and C2 true), ``"no_input_shift"`` (C1 false),
            ``"no_slope_shift"`` (C2 false).
        dim: d, the input dimension.
        shift_range: Training shifts are uniform on [-r, r]^d.
        slope_scale: γ.
        noise_scale: σ.
    """

    variant: str = "both"
    dim: int = 2
    shift_range: float = 1.0
    slope_scale: float = 1.5
    noise_scale: float = 0.3

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(
                f"EnvironmentSCM: variant must be one of {VARIANTS}, got {self.variant!r}"
            )
        self.weights = torch.linspace(1.0, -1.0, self.dim)

    def environments(self, num: int, *, outside: bool = False, seed: int = 0) -> Tensor:
        """Shifts a_e ``(num, dim)``: in [-r, r]^d, or with every |coordinate| in [2r, 3r]."""
        rng = as_generator(seed)
        u = torch.as_tensor(rng.random((num, self.dim)), dtype=torch.float32)
        if not outside:
            return self.shift_range * (2 * u - 1)
        sign = torch.as_tensor(rng.integers(0, 2, (num, self.dim)) * 2 - 1, dtype=torch.float32)
        return sign * self.shift_range * (2 + u)

    def sample(self, shifts: Tensor, num: int, *, seed: int = 0) -> tuple[Tensor, Tensor]:
        """``num`` draws per environment: x ``(E, num, dim)``, y ``(E, num)``."""
        rng = as_generator(seed)
        noise = torch.as_tensor(rng.standard_normal((len(shifts), num, self.dim + 1)))
        noise = noise.to(torch.float32)
        location = torch.zeros_like(shifts) if self.variant == "no_input_shift" else shifts
        x = location[:, None, :] + noise[..., : self.dim]
        gamma = 0.0 if self.variant == "no_slope_shift" else self.slope_scale
        slope = self.weights + gamma * shifts  # (E, dim)
        y = (x * slope[:, None, :]).sum(-1) + self.noise_scale * noise[..., -1]
        return x, y
