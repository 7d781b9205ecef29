"""Distributions on embedded manifolds: uniform, von Mises-Fisher and products of von Mises.

All are torch :class:`~torch.distributions.Distribution` objects over embedded points (event
shape ``(D,)``), with densities relative to the manifold's volume (see
:mod:`sbiplug_fff.manifolds`), and a ``support`` constraint whose ``check`` accepts points on
the manifold. sbi accepts them as priors, and its prior-support rejection keeps the posterior
samples that lie on the manifold.

The von Mises-Fisher sampler is Wood's rejection algorithm (Wood, *Simulation of the von
Mises Fisher distribution*, 1994).
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor
from torch.distributions import (
    Distribution,
    Transform,
    VonMises,
    biject_to,
    constraints,
    transform_to,
)

from sbiplug_fff.manifolds import Manifold, Sphere, Torus, get_manifold

__all__ = [
    "ManifoldProjectionTransform",
    "OnManifold",
    "ProductVonMises",
    "UniformManifold",
    "VonMisesFisher",
    "vmf_log_normaliser",
]


class OnManifold(constraints.Constraint):
    """The constraint "lies on ``manifold``" (up to ``atol``), checked per event."""

    event_dim = 1

    def __init__(self, manifold: Manifold, atol: float = 1e-4):
        self.manifold = manifold
        self.atol = atol
        super().__init__()

    def check(self, value: Tensor) -> Tensor:
        return self.manifold.contains(value, self.atol)

    def __repr__(self) -> str:
        return f"OnManifold({self.manifold})"


class ManifoldProjectionTransform(Transform):
    """R^D -> M by the manifold's projection; its "inverse" is the inclusion M -> R^D.

    Registered with ``biject_to`` / ``transform_to`` for :class:`OnManifold`, so that sbi's
    parameter transforms (used for MAP search and MCMC) accept manifold priors: a search in
    R^D is mapped back onto M. Not a bijection; the log-det is reported as 0.
    """

    domain = constraints.real_vector
    bijective = False

    def __init__(self, manifold: Manifold):
        super().__init__()
        self.manifold = manifold

    @property
    def codomain(self) -> constraints.Constraint:  # type: ignore[override]
        return OnManifold(self.manifold)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ManifoldProjectionTransform) and other.manifold is self.manifold

    def _call(self, x: Tensor) -> Tensor:
        return self.manifold.project(x)

    def _inverse(self, y: Tensor) -> Tensor:
        return y

    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:
        return x.new_zeros(x.shape[:-1])


@biject_to.register(OnManifold)
@transform_to.register(OnManifold)
def _projection_to_manifold(constraint: OnManifold) -> Transform:
    return ManifoldProjectionTransform(constraint.manifold)


class _ManifoldDistribution(Distribution):
    """Shared plumbing: event shape (D,), a manifold support, no argument validation."""

    arg_constraints: ClassVar[dict] = {}
    has_rsample = False

    def __init__(self, manifold: Manifold, batch_shape: tuple[int, ...] = ()):
        self.manifold = manifold
        super().__init__(
            torch.Size(batch_shape), torch.Size([manifold.embedding_dim]), validate_args=False
        )

    @property
    def support(self) -> constraints.Constraint:
        return OnManifold(self.manifold)


class UniformManifold(_ManifoldDistribution):
    """The uniform distribution on a compact manifold: density 1 / vol(M).

    Arguments:
        manifold: A :class:`Manifold` or a name (``"sphere"`` = S^2, ``"torus"`` = T^2,
            ``"so3"``).
    """

    def __init__(self, manifold: Manifold | str):
        super().__init__(get_manifold(manifold))

    def sample(self, sample_shape: tuple[int, ...] = ()) -> Tensor:
        return self.manifold.sample_uniform(tuple(sample_shape))

    def log_prob(self, value: Tensor) -> Tensor:
        return torch.full(value.shape[:-1], -self.manifold.log_volume, dtype=value.dtype)

    @property
    def mean(self) -> Tensor:
        return torch.zeros(self.manifold.embedding_dim)

    @property
    def variance(self) -> Tensor:
        # every coordinate's second moment on these manifolds, by symmetry
        d = self.manifold.embedding_dim
        per_coordinate = {"sphere": 1 / d, "torus": 0.5, "so3": 1 / 3}
        return torch.full((d,), per_coordinate[self.manifold.name])


def vmf_log_normaliser(kappa: Tensor, dim: int) -> Tensor:
    """log C_p(kappa) of the von Mises-Fisher density C_p(kappa) exp(kappa mu.x) on S^(p-1).

    Arguments:
        kappa: Concentrations > 0, any shape.
        dim: The embedding dimension p.

    Returns:
        log C_p(kappa), shape of ``kappa``. Exact and differentiable for p = 3; other p use
        SciPy's scaled Bessel function (not differentiable in kappa).
    """
    if dim == 3:
        # C_3 = kappa / (4 pi sinh kappa) = kappa / (2 pi (1 - exp(-2 kappa)) exp(kappa))
        log_sinh_term = torch.log1p(-torch.exp(-2 * kappa))
        return torch.log(kappa) - math.log(2 * math.pi) - log_sinh_term - kappa
    from scipy.special import ive

    order = dim / 2 - 1
    k = kappa.detach().cpu().double().numpy()
    log_bessel = np.log(ive(order, k)) + k
    value = order * np.log(k) - dim / 2 * math.log(2 * math.pi) - log_bessel
    return torch.as_tensor(value, dtype=kappa.dtype)


class VonMisesFisher(_ManifoldDistribution):
    """The von Mises-Fisher distribution on S^(p-1): density C_p(kappa) exp(kappa mu.x).

    Arguments:
        loc: Mean directions, unit vectors of shape ``(*batch, p)``.
        concentration: kappa > 0, shape ``(*batch,)`` or a float.
    """

    def __init__(self, loc: Tensor, concentration: Tensor | float):
        loc = torch.as_tensor(loc, dtype=torch.float32)
        Sphere(loc.shape[-1] - 1).check(loc, "von Mises-Fisher locations")
        concentration = torch.as_tensor(concentration, dtype=loc.dtype)
        if not bool((concentration > 0).all()):
            raise ValueError("von Mises-Fisher concentration must be > 0")
        batch_shape = torch.broadcast_shapes(loc.shape[:-1], concentration.shape)
        self.loc = loc.expand(*batch_shape, loc.shape[-1])
        self.concentration = concentration.expand(batch_shape)
        super().__init__(Sphere(loc.shape[-1] - 1), batch_shape)

    def log_prob(self, value: Tensor) -> Tensor:
        p = self.manifold.embedding_dim
        return vmf_log_normaliser(self.concentration, p) + self.concentration * (
            value * self.loc
        ).sum(-1)

    def sample(self, sample_shape: tuple[int, ...] = ()) -> Tensor:
        shape = torch.Size(sample_shape) + self.batch_shape
        p = self.manifold.embedding_dim
        kappa = self.concentration.expand(shape).reshape(-1).double()
        w = _wood_cosines(kappa, p)  # cosine to the mean direction, (N,)
        tangent = torch.randn(len(kappa), p - 1, dtype=torch.float64)
        tangent = tangent / tangent.norm(dim=-1, keepdim=True)
        local = torch.cat(
            [(1 - w**2).clamp_min(0).sqrt().unsqueeze(-1) * tangent, w.unsqueeze(-1)], dim=-1
        )  # mean direction = e_p
        loc = self.loc.expand(*shape, p).reshape(-1, p).double()
        samples = _rotate_from_north(local, loc)
        return samples.to(self.loc.dtype).reshape(*shape, p)


def _wood_cosines(kappa: Tensor, p: int) -> Tensor:
    """Draw w = mu.x for vMF(kappa) on S^(p-1): inverse CDF for p = 3, else Wood's rejection."""
    if p == 3:
        u = torch.rand_like(kappa)
        return 1 + torch.log(u + (1 - u) * torch.exp(-2 * kappa)) / kappa
    b = (p - 1) / (2 * kappa + torch.sqrt(4 * kappa**2 + (p - 1) ** 2))
    x0 = (1 - b) / (1 + b)
    c = kappa * x0 + (p - 1) * torch.log(1 - x0**2)
    beta = torch.distributions.Beta((p - 1) / 2, (p - 1) / 2)
    w = torch.empty_like(kappa)
    todo = torch.ones_like(kappa, dtype=torch.bool)
    while bool(todo.any()):
        z = beta.sample((int(todo.sum()),)).to(kappa.dtype)
        bt, x0t, ct, kt = b[todo], x0[todo], c[todo], kappa[todo]
        candidate = (1 - (1 + bt) * z) / (1 - (1 - bt) * z)
        accept = kt * candidate + (p - 1) * torch.log(1 - x0t * candidate) - ct >= torch.log(
            torch.rand_like(z)
        )
        index = todo.nonzero().squeeze(-1)[accept]
        w[index] = candidate[accept]
        todo[index] = False
    return w


def _rotate_from_north(local: Tensor, loc: Tensor) -> Tensor:
    """Apply the reflection-based rotation taking e_p to ``loc`` to ``local`` (rows)."""
    north = torch.zeros_like(loc)
    north[:, -1] = 1.0
    u = north - loc
    norm = u.norm(dim=-1, keepdim=True)
    u = torch.where(norm > 1e-9, u / norm.clamp_min(1e-12), torch.zeros_like(u))
    # The Householder reflection H = I - 2uu^T maps e_p to loc; any orthogonal map taking e_p
    # to loc pushes vMF(e_p, kappa) forward to vMF(loc, kappa).
    return local - 2 * (local * u).sum(-1, keepdim=True) * u


class ProductVonMises(_ManifoldDistribution):
    """Independent von Mises distributions on the k circles of the embedded torus T^k.

    Arguments:
        loc: Mean angles, shape ``(*batch, k)``.
        concentration: kappa > 0 per angle, broadcastable to ``loc``.
    """

    def __init__(self, loc: Tensor, concentration: Tensor | float):
        loc = torch.as_tensor(loc, dtype=torch.float32)
        concentration = torch.as_tensor(concentration, dtype=loc.dtype).expand(loc.shape)
        if not bool((concentration > 0).all()):
            raise ValueError("von Mises concentration must be > 0")
        self.loc, self.concentration = loc, concentration
        super().__init__(Torus(loc.shape[-1]), loc.shape[:-1])

    def log_prob(self, value: Tensor) -> Tensor:
        circles = value.reshape(*value.shape[:-1], -1, 2)
        cosine = circles[..., 0] * torch.cos(self.loc) + circles[..., 1] * torch.sin(self.loc)
        kappa = self.concentration
        log_normaliser = math.log(2 * math.pi) + torch.log(torch.special.i0e(kappa)) + kappa
        return (kappa * cosine - log_normaliser).sum(-1)

    def sample(self, sample_shape: tuple[int, ...] = ()) -> Tensor:
        angles = VonMises(self.loc, self.concentration).sample(sample_shape)
        return Torus.from_angles(angles)
