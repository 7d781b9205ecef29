"""A generic misspecification wrapper: any simulator, made wrong in one named way.

``Misspecified(simulator, kind, strength)`` is a :class:`~sbiplug.Simulator` of the *observed*
data of a misspecified process, so wrappers compose; ``strength = 0`` is the simulator itself.
Observation-process kinds act on the noise e = x − c(θ), with c(θ) and the noise moments
estimated from ``num_replicates`` extra simulations at the same θ (pooled over the set axis for
set-valued data ``(n, d)``, whose rows are taken as i.i.d.; per element otherwise):

=============  ==============================================================================
kind           observed data (s = strength)
=============  ==============================================================================
heavy_tails    e · sqrt(ν / V), V ~ χ²_ν, ν = 1 / s per element: Student-t noise of the same
               scale when e is normal (s = 0.5: ν = 2)
skew           e + s (|e| − E|e|), rescaled: same mean and variance, skewed
bimodal        sqrt(1 − s²) e ± s sd: same mean and variance, two modes for s ≳ 0.7
outliers       with probability s per element (per row for sets): e ± 5 sd (gross errors)
scale          (1 + s) e: noise sd times 1 + s
drift          x + s sd t, t from 0 to 1 along the first event axis (time, or set order)
correlated     AR(1) noise with lag-1 correlation s along the first event axis, same marginals
censor         min(x, c + sd Φ⁻¹(1 − s)): the upper tail beyond the (1 − s) quantile clipped
prior_shift    θ shifted by s prior sds, in the prior's unconstrained space
prior_scale    θ's prior sd times 1 + s, in the prior's unconstrained space
=============  ==============================================================================

A batch equals its rows simulated one after another (one seed per row).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.special import ndtri
from torch import Tensor
from torch.distributions import AffineTransform, Distribution, TransformedDistribution, biject_to

from sbiplug import Simulator
from sbiplug.toolkit import check_float, check_int

__all__ = ["MISSPECIFICATIONS", "Misspecified"]

NOISE_KINDS: tuple[str, ...] = (
    "heavy_tails", "skew", "bimodal", "outliers", "scale", "drift", "correlated", "censor",
)  # fmt: skip
PRIOR_KINDS: tuple[str, ...] = ("prior_shift", "prior_scale")
MISSPECIFICATIONS: tuple[str, ...] = NOISE_KINDS + PRIOR_KINDS
# Strengths at which a kind stops being defined (1 / s degrees of freedom, a correlation, ...).
_BELOW_ONE = ("heavy_tails", "bimodal", "correlated", "censor", "skew")
_OUTLIER_SIZE = 5.0  # gross errors of this many noise sds
_PRIOR_MOMENT_DRAWS = 8192


class Misspecified(Simulator):
    """``simulator`` with one misspecification of its observation process or prior.

    Arguments:
        simulator: Any sbiplug simulator (the training model).
        kind: One of :data:`MISSPECIFICATIONS` (see the module docstring).
        strength: s >= 0; 0 gives the simulator unchanged; below 1 for ``heavy_tails``,
            ``skew``, ``bimodal``, ``correlated`` and ``censor``, at most 1 for ``outliers``.
        num_replicates: Extra simulations per row that estimate the noise-free output c(θ)
            and the noise moments (observation-process kinds only).
    """

    def __init__(
        self, simulator: Simulator, kind: str, strength: float, num_replicates: int = 16
    ) -> None:
        if not isinstance(simulator, Simulator):
            raise TypeError(
                f"Misspecified: simulator must be an sbiplug Simulator, got "
                f"{type(simulator).__name__}"
            )
        if kind not in MISSPECIFICATIONS:
            raise ValueError(
                f"Misspecified: kind must be one of {', '.join(MISSPECIFICATIONS)}, got {kind!r}"
            )
        owner = f"Misspecified({kind!r})"
        maximum = 1.0 if kind == "outliers" else None
        strength = check_float("strength", strength, minimum=0.0, maximum=maximum, owner=owner)
        if kind in _BELOW_ONE and strength >= 1.0:
            raise ValueError(f"{owner}: strength must be below 1, got {strength}")
        self.base = simulator
        self.kind = kind
        self.strength = strength
        self.num_replicates = check_int("num_replicates", num_replicates, minimum=2, owner=owner)
        self.name = simulator.name
        self.parameter_names = tuple(simulator.parameter_names)
        self.observation_shape = tuple(simulator.observation_shape)
        self.parameter_manifold = simulator.parameter_manifold
        self._prior = self._misspecified_prior() if kind in PRIOR_KINDS else simulator.prior

    @property
    def prior(self) -> Distribution:
        return self._prior

    @property
    def is_well_specified(self) -> bool:
        return self.strength == 0.0

    def _misspecified_prior(self) -> Distribution:
        """The base prior moved (shift) or widened (scale) in its unconstrained space."""
        base = self.base.prior
        if self.strength == 0.0:
            return base
        to_support = biject_to(base.support)
        with torch.random.fork_rng():
            torch.manual_seed(0)
            unconstrained = to_support.inv(base.sample((_PRIOR_MOMENT_DRAWS,))).double()
        mean, sd = unconstrained.mean(0).float(), unconstrained.std(0).float()
        if self.kind == "prior_shift":
            move = AffineTransform(self.strength * sd, torch.ones_like(sd), event_dim=1)
        else:
            factor = 1.0 + self.strength
            move = AffineTransform(mean * (1.0 - factor), torch.full_like(sd, factor), event_dim=1)
        return TransformedDistribution(base, [to_support.inv, move, to_support])

    def _simulate(self, theta: Tensor, rng: np.random.Generator) -> Tensor:
        if self.kind in PRIOR_KINDS or self.strength == 0.0:
            return self.base.simulate(theta, seed=rng)
        seeds = rng.integers(0, 2**63, size=len(theta))
        rows = [
            self._one_row(theta[i], np.random.default_rng(int(seeds[i]))) for i in range(len(theta))
        ]
        return torch.stack(rows) if rows else torch.empty(0, *self.observation_shape)

    def _one_row(self, theta: Tensor, rng: np.random.Generator) -> Tensor:
        """One observed data set: its simulation, the replicates and the transform from ``rng``."""
        repeated = theta.expand(1 + self.num_replicates, -1)
        draws = self.base.simulate(repeated, seed=rng).double().numpy()
        x, replicates = draws[0], draws[1:]
        axes = (0, 1) if replicates.ndim == 3 else (0,)  # sets: pool over replicates and rows
        centre = replicates.mean(axis=axes)
        noise = replicates - centre
        sd = noise.std(axis=axes)
        return torch.as_tensor(
            self._transform(x, centre, noise, sd, axes, rng), dtype=torch.float32
        )

    def _transform(
        self,
        x: np.ndarray,
        centre: np.ndarray,
        noise: np.ndarray,
        sd: np.ndarray,
        axes: tuple[int, ...],
        rng: np.random.Generator,
    ) -> np.ndarray:
        """The misspecified data set from ``x`` (event shape) and the replicates' moments."""
        s, e = self.strength, x - centre
        shape = x.shape
        if self.kind == "heavy_tails":
            degrees = 1.0 / s
            return centre + e * np.sqrt(degrees / rng.chisquare(degrees, size=shape))
        if self.kind == "skew":
            abs_mean = np.abs(noise).mean(axis=axes)
            skewed = e + s * (np.abs(e) - abs_mean)
            lopsided = (noise * (np.abs(noise) - abs_mean)).mean(axis=axes)
            spread = (np.abs(noise) - abs_mean).var(axis=axes)
            variance = sd**2 + 2.0 * s * lopsided + s**2 * spread
            return centre + skewed * np.sqrt(sd**2 / np.maximum(variance, 1e-300))
        if self.kind == "bimodal":
            signs = rng.choice([-1.0, 1.0], size=shape)
            return centre + math.sqrt(1.0 - s**2) * e + s * sd * signs
        if self.kind == "outliers":
            hit_shape = shape[:1] + (1,) * (len(shape) - 1) if len(axes) == 2 else shape
            hit = rng.random(hit_shape) < s
            signs = rng.choice([-1.0, 1.0], size=hit_shape)
            return x + hit * signs * _OUTLIER_SIZE * sd
        if self.kind == "scale":
            return centre + (1.0 + s) * e
        if self.kind == "drift":
            ramp = np.linspace(0.0, 1.0, shape[0]).reshape((-1,) + (1,) * (len(shape) - 1))
            return x + s * sd * ramp
        if self.kind == "correlated":
            z = e / np.where(sd > 0, sd, 1.0)
            out = np.empty_like(z)
            out[0] = z[0]
            for k in range(1, shape[0]):
                out[k] = s * out[k - 1] + math.sqrt(1.0 - s**2) * z[k]
            return centre + out * sd
        # censor
        return np.minimum(x, centre + sd * ndtri(1.0 - s)) if s > 0 else x

    def __repr__(self) -> str:
        return f"Misspecified({self.base!r}, kind={self.kind!r}, strength={self.strength})"
