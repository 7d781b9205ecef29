"""``phi4``: the 2-D lattice φ⁴ theory in the hopping parameterisation, condition κ.

S(φ; κ, λ) = sum_x [ (1 - 2λ) φ_x^2 + λ φ_x^4 - 2κ sum_{μ=1,2} φ_x φ_{x+μ} ] on an L x L
periodic lattice, p(φ | κ) ∝ exp(-S), so d/dκ log p~ = 2 sum_x sum_μ φ_x φ_{x+μ}. TRADE
(Wahl et al., arXiv 2410.19492) uses L = 8, λ = 0.02, κ in [0.22, 0.32]. Ground truth comes
from :func:`sbiplug_trade.mcmc.hmc_sample`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from sbiplug import Target
from sbiplug.toolkit import check_int
from sbiplug_trade.mcmc import hmc_sample

__all__ = ["Phi4Lattice", "phi4_observables"]


class Phi4Lattice(Target):
    """φ⁴ on an L x L periodic lattice, flattened to ``dim = L * L``.

    Arguments:
        lattice_size: L.
        coupling: The quartic coupling λ.
        condition_range: The hopping-parameter range.
        base_condition: The κ with training data.
    """

    name = "phi4"
    condition_name = "kappa"
    condition_kind = "coupling"

    def __init__(
        self,
        lattice_size: int = 8,
        coupling: float = 0.02,
        condition_range: tuple[float, float] = (0.22, 0.32),
        base_condition: float = 0.25,
    ) -> None:
        self.lattice_size = check_int(
            "lattice_size", lattice_size, minimum=2, owner="target 'phi4'"
        )
        self.dim = lattice_size**2
        self.coupling = float(coupling)
        self.condition_range = (float(condition_range[0]), float(condition_range[1]))
        self.base_condition = float(base_condition)

    def _field(self, x: Tensor) -> Tensor:
        return x.reshape(-1, self.lattice_size, self.lattice_size)

    def hopping_sum(self, x: Tensor) -> Tensor:
        """sum_x sum_μ φ_x φ_{x+μ}, shape ``(n,)``."""
        phi = self._field(x)
        neighbours = torch.roll(phi, 1, dims=1) + torch.roll(phi, 1, dims=2)
        return (phi * neighbours).sum(dim=(1, 2))

    def action(self, x: Tensor, kappa: Tensor | float) -> Tensor:
        """S(φ; κ), shape ``(n,)``."""
        kappa = torch.as_tensor(kappa, dtype=x.dtype).reshape(-1)
        local = (1 - 2 * self.coupling) * x**2 + self.coupling * x**4
        return local.sum(dim=-1) - 2 * kappa * self.hopping_sum(x)

    def log_density(self, x: Tensor, c: Tensor) -> Tensor:
        """-S(φ; κ), shape ``(n,)``; ``c`` is κ, shape ``(n, 1)`` or scalar."""
        return -self.action(x, c)

    def sample(
        self,
        num_samples: int,
        c: float,
        *,
        seed: int | None = 0,
        chains: int = 128,
        burn_in: int = 400,
        thin: int = 4,
        show_progress_bars: bool = False,
    ) -> Tensor:
        """Ground-truth draws at κ = ``c`` by HMC, shape ``(num_samples, L * L)``.

        Chains start from N(0, 1); each returns ``ceil(num_samples / chains)`` thinned draws.
        """
        chains = max(1, min(chains, num_samples))
        per_chain = -(-num_samples // chains)
        generator = torch.Generator().manual_seed(0 if seed is None else seed)
        initial = torch.randn(chains, self.dim, generator=generator)
        kappa = float(c)
        draws, _ = hmc_sample(
            lambda x: self.log_density(x, kappa),
            initial,
            per_chain,
            step_size=0.3,
            num_leapfrog=8,
            burn_in=burn_in,
            thin=thin,
            seed=None if seed is None else seed + 1,
            show_progress_bars=show_progress_bars,
        )
        return draws[:num_samples]


def phi4_observables(x: Tensor, target: Phi4Lattice, kappa: float) -> dict[str, float]:
    """Magnetisation, susceptibility, action density and Binder cumulant of draws.

    With M = sum_x φ_x / V: ``abs_magnetisation`` = <|M|>, ``susceptibility`` =
    V (<M^2> - <|M|>^2), ``action`` = <S> / V, ``binder`` = 1 - <M^4> / (3 <M^2>^2).

    Arguments:
        x: Draws, shape ``(n, L * L)``.
        target: The lattice.
        kappa: The hopping parameter the draws belong to.
    """
    volume = target.dim
    magnetisation = x.sum(dim=-1) / volume
    m2 = (magnetisation**2).mean()
    return {
        "magnetisation": float(magnetisation.mean()),
        "abs_magnetisation": float(magnetisation.abs().mean()),
        "susceptibility": float(volume * (m2 - magnetisation.abs().mean() ** 2)),
        "action": float(target.action(x, kappa).mean() / volume),
        "binder": float(1 - (magnetisation**4).mean() / (3 * m2**2)),
    }
