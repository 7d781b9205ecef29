"""``so3_orientation``: a rotation seen through noisy rotated reference vectors.

theta = R in SO(3) (flattened row by row) with the uniform (Haar) prior; x = (R v_1, ..., R v_m)
+ sigma * noise for fixed unit reference vectors v_j. The reference posterior is drawn by
sampling-importance-resampling: a Gaussian proposal in the exponential coordinates around the
Procrustes estimate, refitted once to the weighted draws, mixed with 5% of the uniform
distribution for safety; its effective sample size is checked to exceed ten times the number
of requested draws.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor
from torch.distributions import Distribution

from sbiplug import Simulator
from sbiplug.toolkit import SeedLike, as_generator, check_positive
from sbiplug_fff.distributions import UniformManifold
from sbiplug_fff.manifolds import SO3, quaternion_to_matrix

__all__ = ["SO3Orientation"]

_REFERENCE_VECTORS = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0))


def _hat(omega: np.ndarray) -> np.ndarray:
    x, y, z = omega[..., 0], omega[..., 1], omega[..., 2]
    zero = np.zeros_like(x)
    return np.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=-1).reshape(*omega.shape, 3)


def _exp(omega: np.ndarray) -> np.ndarray:
    """Rodrigues' formula: rotation vectors ``(N, 3)`` to matrices ``(N, 3, 3)``."""
    angle = np.linalg.norm(omega, axis=-1)[:, None, None]
    k = _hat(omega)
    small = angle < 1e-8
    a = np.where(small, 1.0, np.sin(angle) / np.where(small, 1.0, angle))
    b = np.where(small, 0.5, (1 - np.cos(angle)) / np.where(small, 1.0, angle) ** 2)
    return np.eye(3) + a * k + b * (k @ k)


def _log(rotation: np.ndarray) -> np.ndarray:
    """Principal rotation vectors of matrices ``(N, 3, 3)``, shape ``(N, 3)``."""
    cosine = np.clip((np.trace(rotation, axis1=-2, axis2=-1) - 1) / 2, -1.0, 1.0)
    angle = np.arccos(cosine)
    axis = np.stack(
        [
            rotation[:, 2, 1] - rotation[:, 1, 2],
            rotation[:, 0, 2] - rotation[:, 2, 0],
            rotation[:, 1, 0] - rotation[:, 0, 1],
        ],
        axis=-1,
    )
    sine = np.sin(angle)
    scale = np.where(sine > 1e-8, angle / (2 * np.maximum(sine, 1e-12)), 0.5)
    return axis * scale[:, None]


def _log_haar_jacobian(omega: np.ndarray) -> np.ndarray:
    """log of the Haar density factor 2(1 - cos t) / t^2 in exponential coordinates."""
    t = np.linalg.norm(omega, axis=-1)
    safe = np.maximum(t, 1e-6)
    return np.where(t > 1e-6, np.log(2 * (1 - np.cos(safe)) / safe**2), 0.0)


class SO3Orientation(Simulator):
    """A rotation R observed as noisy images R v_j of fixed reference vectors.

    Arguments:
        noise_scale: Standard deviation sigma of the Gaussian noise per observed number.
        reference_vectors: Unit vectors v_j, shape ``(m, 3)``; two non-parallel ones fix R.
    """

    name = "so3_orientation"
    parameter_names = tuple(f"r{i}{j}" for i in range(1, 4) for j in range(1, 4))
    parameter_manifold = "so3"

    def __init__(self, noise_scale: float = 0.3, reference_vectors=_REFERENCE_VECTORS):
        check_positive("noise_scale", noise_scale, owner="simulator 'so3_orientation'")
        vectors = np.asarray(reference_vectors, dtype=np.float64)
        if vectors.ndim != 2 or vectors.shape[1] != 3:
            raise ValueError("so3_orientation: reference_vectors must have shape (m, 3)")
        self.noise_scale = float(noise_scale)
        self.vectors = vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)
        self.observation_shape = (3 * len(self.vectors),)
        self.so3 = SO3()
        self._prior = UniformManifold(self.so3)

    @property
    def prior(self) -> Distribution:
        return self._prior

    def _mean(self, rotations: np.ndarray) -> np.ndarray:
        """R v_j for rotations ``(N, 3, 3)``, flattened to ``(N, 3m)``."""
        return np.einsum("nij,mj->nmi", rotations, self.vectors).reshape(len(rotations), -1)

    def _simulate(self, theta: Tensor, rng: np.random.Generator) -> Tensor:
        noise = rng.standard_normal((theta.shape[0], self.observation_shape[0]))
        mean = self._mean(theta.double().numpy().reshape(-1, 3, 3))
        return torch.as_tensor(mean + self.noise_scale * noise, dtype=torch.float32)

    def _log_likelihood_np(self, rotations: np.ndarray, x: np.ndarray) -> np.ndarray:
        squared = ((x.reshape(1, -1) - self._mean(rotations)) ** 2).sum(-1)
        dim = self.observation_shape[0]
        return -squared / (2 * self.noise_scale**2) - dim / 2 * math.log(
            2 * math.pi * self.noise_scale**2
        )

    def log_likelihood(self, theta: Tensor, x: Tensor) -> Tensor:
        rotations = theta.reshape(-1, 3, 3)
        vectors = torch.as_tensor(self.vectors, dtype=theta.dtype)
        mean = torch.einsum("nij,mj->nmi", rotations, vectors).reshape(len(theta), -1)
        dim = self.observation_shape[0]
        return -(x - mean).pow(2).sum(-1) / (2 * self.noise_scale**2) - dim / 2 * math.log(
            2 * math.pi * self.noise_scale**2
        )

    def procrustes(self, x_o: np.ndarray) -> np.ndarray:
        """The maximum-likelihood rotation for x_o (Kabsch), shape ``(3, 3)``."""
        observed = x_o.reshape(len(self.vectors), 3)
        u, _, vt = np.linalg.svd(observed.T @ self.vectors)
        flip = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
        return u @ flip @ vt

    def reference_posterior(
        self, x_o: Tensor, num_samples: int, *, seed: SeedLike = None
    ) -> Tensor:
        rng = as_generator(seed)
        x = torch.as_tensor(x_o).double().numpy().reshape(-1)
        centre = self.procrustes(x)
        mean, covariance = np.zeros(3), np.eye(3) * 0.5**2
        for stage, size in enumerate((50_000, max(200_000, 40 * num_samples))):
            omega, rotations, log_weights = self._importance_draws(
                x, centre, mean, covariance, size, rng
            )
            weights = np.exp(log_weights - log_weights.max())
            weights /= weights.sum()
            if stage == 0:
                mean = weights @ omega
                centred = omega - mean
                covariance = 2.0 * (centred * weights[:, None]).T @ centred + 1e-6 * np.eye(3)
        effective = 1.0 / np.sum(weights**2)
        if effective < 10 * num_samples:
            raise RuntimeError(
                f"so3_orientation: importance sampling reached an effective sample size of "
                f"{effective:.0f}, below 10 x {num_samples} requested draws"
            )
        chosen = rng.choice(len(weights), size=num_samples, p=weights)
        return torch.as_tensor(rotations[chosen].reshape(num_samples, 9), dtype=torch.float32)

    def _importance_draws(self, x, centre, mean, covariance, size, rng):
        """Draws from the defensive proposal and their log importance weights."""
        local = rng.random(size) >= 0.05
        cholesky = np.linalg.cholesky(covariance)
        omega = mean + rng.standard_normal((size, 3)) @ cholesky.T
        quaternion = torch.as_tensor(rng.standard_normal((size, 4)))
        uniform = quaternion_to_matrix(quaternion / quaternion.norm(dim=-1, keepdim=True))
        rotations = np.where(local[:, None, None], centre @ _exp(omega), uniform.numpy())
        omega = _log(np.einsum("ji,njk->nik", centre, rotations))  # back to local coordinates
        precision = np.linalg.inv(covariance)
        centred = omega - mean
        log_gauss = -0.5 * np.einsum("ni,ij,nj->n", centred, precision, centred) - 0.5 * (
            3 * math.log(2 * math.pi) + np.linalg.slogdet(covariance)[1]
        )
        # densities relative to the Haar probability measure
        log_local = log_gauss - _log_haar_jacobian(omega) + math.log(8 * math.pi**2)
        log_proposal = np.logaddexp(math.log(0.95) + log_local, math.log(0.05))
        return omega, rotations, self._log_likelihood_np(rotations, x) - log_proposal
