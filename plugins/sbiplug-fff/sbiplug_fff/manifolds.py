"""Embedded Riemannian manifolds for manifold free-form flows (M-FFF).

Sorrenson et al., *Learning Distributions on Manifolds with Free-form Flows* (arXiv 2312.09852).
Each manifold M of dimension n lives in a Euclidean embedding space R^D and provides a smooth
projection pi: R^D -> M (identity on M), the orthogonal tangent projector, an orthonormal tangent
basis (a D x n matrix) and uniform sampling with the exact volume. Densities built on these
tangent bases are densities with respect to the volume M inherits from the Euclidean metric of
R^D. All functions are batched over leading dimensions and differentiable (reverse and forward
mode), so the projection can sit inside the flow's networks.

| manifold | embedding | n | volume |
|---|---|---|---|
| ``sphere(n)`` = S^n | R^(n+1) | n | 2 pi^((n+1)/2) / Gamma((n+1)/2) |
| ``torus(k)`` = k unit circles | R^(2k), (cos a, sin a) per angle | k | (2 pi)^k |
| ``so3()`` | R^9, a 3x3 matrix flattened row by row | 3 | 16 sqrt(2) pi^2 |

SO(3) convention: the volume is that of the Frobenius metric of R^9 (tangent vectors R A with A
skew have squared length tr(A^T A)); under the angle metric 1/2 tr(A^T B), for which the
geodesic distance is the rotation angle, the volume is 8 pi^2, so log densities differ by the
constant log(2 sqrt 2) ~ 1.04 nats.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch
from torch import Tensor

from sbiplug.toolkit import check_positive_int

__all__ = [
    "MANIFOLD_NAMES",
    "SO3",
    "Euclidean",
    "Manifold",
    "Sphere",
    "Torus",
    "get_manifold",
    "so3",
    "sphere",
    "torus",
]

MANIFOLD_NAMES = ("sphere", "torus", "so3")
_EPS = 1e-12


class Manifold(ABC):
    """An n-dimensional manifold embedded in R^D.

    Attributes:
        name: Short name (``"sphere"``, ``"torus"``, ``"so3"``, ``"euclidean"``).
        dim: Intrinsic dimension n.
        embedding_dim: Dimension D of the embedding space.
    """

    name: str = "manifold"
    dim: int
    embedding_dim: int

    @property
    @abstractmethod
    def volume(self) -> float:
        """The volume of M (``inf`` when unbounded)."""

    @property
    def log_volume(self) -> float:
        return math.log(self.volume)

    @abstractmethod
    def project(self, x: Tensor) -> Tensor:
        """Map points of R^D onto M, shape ``(*, D) -> (*, D)``; the identity on M."""

    @abstractmethod
    def tangent_projection(self, p: Tensor, v: Tensor) -> Tensor:
        """Orthogonal projection of ``v`` onto the tangent space at ``p``, shapes ``(*, D)``."""

    @abstractmethod
    def tangent_basis(self, p: Tensor) -> Tensor:
        """An orthonormal basis of the tangent space at ``p``, shape ``(*, D, n)``."""

    @abstractmethod
    def sample_uniform(
        self, shape: tuple[int, ...], generator: torch.Generator | None = None
    ) -> Tensor:
        """Uniform draws on M, shape ``(*shape, D)``."""

    def distance_to(self, x: Tensor) -> Tensor:
        """Euclidean distance from ``x`` to its projection, shape ``(*,)``."""
        return (x - self.project(x)).norm(dim=-1)

    def contains(self, x: Tensor, atol: float = 1e-4) -> Tensor:
        """Whether each point of ``x`` (shape ``(*, D)``) lies on M up to ``atol``: ``(*,)``."""
        if x.shape[-1] != self.embedding_dim:
            return torch.zeros(x.shape[:-1], dtype=torch.bool)
        return torch.isfinite(x).all(-1) & (self.distance_to(x) <= atol)

    def check(self, x: Tensor, what: str = "points", atol: float = 1e-4) -> None:
        """Raise ``ValueError`` unless every row of ``x`` lies on M."""
        if x.ndim < 1 or x.shape[-1] != self.embedding_dim:
            raise ValueError(
                f"{what} must have last dimension {self.embedding_dim} to lie on {self}, "
                f"got shape {tuple(x.shape)}"
            )
        inside = self.contains(x, atol)
        if not bool(inside.all()):
            bad = x.reshape(-1, self.embedding_dim)[~inside.reshape(-1)]
            raise ValueError(
                f"{int((~inside).sum())} of {inside.numel()} {what} do not lie on {self} "
                f"(tolerance {atol}); first offending point: {bad[0].tolist()}. "
                f"{self.expected}"
            )

    @property
    def expected(self) -> str:
        """What a point of M looks like, for error messages."""
        return ""

    def __repr__(self) -> str:
        return f"{self.name}(dim={self.dim}, embedding_dim={self.embedding_dim})"


class Euclidean(Manifold):
    """R^d as a trivial manifold: identity projection and standard basis (used by FFF)."""

    name = "euclidean"

    def __init__(self, dim: int):
        self.dim = self.embedding_dim = int(dim)

    @property
    def volume(self) -> float:
        return math.inf

    def project(self, x: Tensor) -> Tensor:
        return x

    def tangent_projection(self, p: Tensor, v: Tensor) -> Tensor:
        return v

    def tangent_basis(self, p: Tensor) -> Tensor:
        eye = torch.eye(self.dim, dtype=p.dtype, device=p.device)
        return eye.expand(*p.shape[:-1], self.dim, self.dim)

    def sample_uniform(self, shape, generator=None) -> Tensor:
        raise ValueError("the Euclidean space has no uniform distribution")


class Sphere(Manifold):
    """The unit sphere S^n in R^(n+1); projection x / |x|."""

    name = "sphere"

    def __init__(self, n: int = 2):
        self.dim = check_positive_int("dimension n", n, owner="sphere")
        self.embedding_dim = self.dim + 1

    @property
    def volume(self) -> float:
        d = self.embedding_dim
        return 2 * math.pi ** (d / 2) / math.gamma(d / 2)

    @property
    def expected(self) -> str:
        return f"Points on the sphere are unit vectors of R^{self.embedding_dim}."

    def project(self, x: Tensor) -> Tensor:
        return x / x.norm(dim=-1, keepdim=True).clamp_min(_EPS)

    def tangent_projection(self, p: Tensor, v: Tensor) -> Tensor:
        return v - (v * p).sum(-1, keepdim=True) * p

    def tangent_basis(self, p: Tensor) -> Tensor:
        # A Householder reflection H maps p to -+e_D; being symmetric and orthogonal, its
        # first D - 1 columns are orthonormal and orthogonal to p. The sign choice keeps the
        # reflection vector away from zero.
        d = self.embedding_dim
        sign = torch.where(p[..., -1:] >= 0, 1.0, -1.0).to(p.dtype)
        u = p.clone()
        u[..., -1:] = u[..., -1:] + sign
        u = u / u.norm(dim=-1, keepdim=True).clamp_min(_EPS)
        eye = torch.eye(d, dtype=p.dtype, device=p.device)
        householder = eye - 2 * u.unsqueeze(-1) * u.unsqueeze(-2)
        return householder[..., :, : d - 1]

    def sample_uniform(self, shape, generator=None) -> Tensor:
        x = torch.randn(*shape, self.embedding_dim, generator=generator)
        return self.project(x)

    def __repr__(self) -> str:
        return f"sphere({self.dim})"


class Torus(Manifold):
    """The flat torus T^k as k unit circles in R^(2k), coordinates (cos a_1, sin a_1, ...)."""

    name = "torus"

    def __init__(self, k: int = 2):
        self.dim = check_positive_int("dimension k", k, owner="torus")
        self.embedding_dim = 2 * self.dim

    @property
    def volume(self) -> float:
        return (2 * math.pi) ** self.dim

    @property
    def expected(self) -> str:
        return (
            f"Points on the torus are {self.dim} unit 2-vectors (cos a, sin a) side by side; "
            "convert angles with Torus.from_angles."
        )

    def _circles(self, x: Tensor) -> Tensor:
        return x.reshape(*x.shape[:-1], self.dim, 2)

    def project(self, x: Tensor) -> Tensor:
        circles = self._circles(x)
        circles = circles / circles.norm(dim=-1, keepdim=True).clamp_min(_EPS)
        return circles.reshape(x.shape)

    def tangent_projection(self, p: Tensor, v: Tensor) -> Tensor:
        pc, vc = self._circles(p), self._circles(v)
        return (vc - (vc * pc).sum(-1, keepdim=True) * pc).reshape(v.shape)

    def tangent_basis(self, p: Tensor) -> Tensor:
        pc = self._circles(p)
        rotated = torch.stack([-pc[..., 1], pc[..., 0]], dim=-1)  # (*, k, 2)
        eye = torch.eye(self.dim, dtype=p.dtype, device=p.device)
        # column i carries the rotated point of circle i in rows 2i, 2i + 1
        basis = rotated.unsqueeze(-2) * eye.unsqueeze(-1)  # (*, k_row, k_col, 2)
        basis = basis.transpose(-2, -1)  # (*, k_row, 2, k_col)
        return basis.reshape(*p.shape[:-1], self.embedding_dim, self.dim)

    def sample_uniform(self, shape, generator=None) -> Tensor:
        angles = (2 * torch.rand(*shape, self.dim, generator=generator) - 1) * math.pi
        return self.from_angles(angles)

    @staticmethod
    def from_angles(angles: Tensor) -> Tensor:
        """Angles ``(*, k)`` to embedded points ``(*, 2k)``."""
        stacked = torch.stack([torch.cos(angles), torch.sin(angles)], dim=-1)
        return stacked.reshape(*angles.shape[:-1], 2 * angles.shape[-1])

    def to_angles(self, x: Tensor) -> Tensor:
        """Embedded points ``(*, 2k)`` to angles in (-pi, pi], shape ``(*, k)``."""
        circles = self._circles(x)
        return torch.atan2(circles[..., 1], circles[..., 0])

    def __repr__(self) -> str:
        return f"torus({self.dim})"


class SO3(Manifold):
    """Rotations of R^3 as 3x3 matrices flattened row by row to R^9.

    The projection is the Gram-Schmidt retraction of the first two columns (the third is their
    cross product): smooth everywhere a matrix has two independent columns, and the identity on
    SO(3). The closest-point (SVD) projection is avoided because its derivative divides by
    differences of singular values, which all coincide at rotations.
    """

    name = "so3"
    dim = 3
    embedding_dim = 9

    @property
    def volume(self) -> float:
        return 16 * math.sqrt(2) * math.pi**2

    @property
    def expected(self) -> str:
        return "Points on SO(3) are rotation matrices (R^T R = I, det R = 1) flattened to 9."

    @staticmethod
    def as_matrix(x: Tensor) -> Tensor:
        return x.reshape(*x.shape[:-1], 3, 3)

    def project(self, x: Tensor) -> Tensor:
        m = self.as_matrix(x)
        a1, a2 = m[..., :, 0], m[..., :, 1]
        b1 = a1 / a1.norm(dim=-1, keepdim=True).clamp_min(_EPS)
        a2 = a2 - (b1 * a2).sum(-1, keepdim=True) * b1
        b2 = a2 / a2.norm(dim=-1, keepdim=True).clamp_min(_EPS)
        b3 = torch.linalg.cross(b1, b2, dim=-1)
        return torch.stack([b1, b2, b3], dim=-1).reshape(x.shape)

    def contains(self, x: Tensor, atol: float = 1e-4) -> Tensor:
        if x.shape[-1] != self.embedding_dim:
            return torch.zeros(x.shape[:-1], dtype=torch.bool)
        m = self.as_matrix(x)
        eye = torch.eye(3, dtype=x.dtype, device=x.device)
        orthogonal = (m.transpose(-1, -2) @ m - eye).abs().amax(dim=(-1, -2)) <= atol
        finite = torch.isfinite(x).all(-1)
        safe = torch.where(finite.unsqueeze(-1).unsqueeze(-1), m, eye)
        return finite & orthogonal & (torch.linalg.det(safe) > 0)

    def tangent_projection(self, p: Tensor, v: Tensor) -> Tensor:
        r, w = self.as_matrix(p), self.as_matrix(v)
        a = r.transpose(-1, -2) @ w
        return (r @ (0.5 * (a - a.transpose(-1, -2)))).reshape(v.shape)

    def tangent_basis(self, p: Tensor) -> Tensor:
        r = self.as_matrix(p)
        generators = _so3_generators(p.dtype, p.device) / math.sqrt(2)  # (3, 3, 3)
        columns = r.unsqueeze(-3) @ generators  # (*, 3, 3, 3): one R E_i per generator
        return columns.reshape(*p.shape[:-1], 3, 9).transpose(-1, -2)

    def sample_uniform(self, shape, generator=None) -> Tensor:
        quaternion = torch.randn(*shape, 4, generator=generator)
        quaternion = quaternion / quaternion.norm(dim=-1, keepdim=True)
        return quaternion_to_matrix(quaternion).reshape(*shape, 9)

    def __repr__(self) -> str:
        return "so3()"


def _so3_generators(dtype: torch.dtype, device: torch.device | None) -> Tensor:
    generators = torch.zeros(3, 3, 3, dtype=dtype, device=device)
    for i, (j, k) in enumerate([(1, 2), (2, 0), (0, 1)]):
        generators[i, k, j], generators[i, j, k] = 1.0, -1.0
    return generators


def quaternion_to_matrix(q: Tensor) -> Tensor:
    """Unit quaternions ``(*, 4)`` (w, x, y, z) to rotation matrices ``(*, 3, 3)``."""
    w, x, y, z = q.unbind(-1)
    rows = [
        1 - 2 * (y * y + z * z),
        2 * (x * y - w * z),
        2 * (x * z + w * y),
        2 * (x * y + w * z),
        1 - 2 * (x * x + z * z),
        2 * (y * z - w * x),
        2 * (x * z - w * y),
        2 * (y * z + w * x),
        1 - 2 * (x * x + y * y),
    ]
    return torch.stack(rows, dim=-1).reshape(*q.shape[:-1], 3, 3)


def sphere(n: int = 2) -> Sphere:
    """The unit sphere S^n in R^(n+1)."""
    return Sphere(n)


def torus(k: int = 2) -> Torus:
    """The torus T^k as k unit circles in R^(2k)."""
    return Torus(k)


def so3() -> SO3:
    """The rotation group SO(3) as 3x3 matrices flattened to R^9."""
    return SO3()


def get_manifold(manifold: str | Manifold, embedding_dim: int | None = None) -> Manifold:
    """A manifold from its name, sized from ``embedding_dim`` when given.

    Arguments:
        manifold: ``"sphere"``, ``"torus"``, ``"so3"`` or a :class:`Manifold`.
        embedding_dim: The parameter dimension D, which fixes n (sphere: D - 1; torus: D / 2).
    """
    if isinstance(manifold, Manifold):
        found = manifold
    elif manifold == "sphere":
        found = Sphere(embedding_dim - 1 if embedding_dim else 2)
    elif manifold == "torus":
        if embedding_dim is not None and embedding_dim % 2:
            raise ValueError(
                f"a torus embeds in an even dimension (2 per angle), got {embedding_dim}"
            )
        found = Torus(embedding_dim // 2 if embedding_dim else 2)
    elif manifold == "so3":
        found = SO3()
    else:
        raise ValueError(
            f"unknown manifold {manifold!r}; supported manifolds: {', '.join(MANIFOLD_NAMES)}"
        )
    if embedding_dim is not None and found.embedding_dim != embedding_dim:
        raise ValueError(
            f"{found} embeds in R^{found.embedding_dim}, but the parameters have dimension "
            f"{embedding_dim}"
        )
    return found
