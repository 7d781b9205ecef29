"""Manifold entropic metrics of a decoder z -> x from its Jacobian columns J_i.

Galperin & Köthe, *Analyzing Generative Models by Manifold Entropic Metrics* (AISTATS 2025,
arXiv 2410.19426). With a factorised latent p(z) of per-dimension entropies h_i, and
vol(J_S) = sqrt(det(J_S^T J_S)) for the columns in an index set S (expectations over z):

- entropy spectrum H_i = h_i + E[log ||J_i||] (a non-linear standard deviation, sorted like PCA);
- full entropy H = sum_i h_i + E[log vol(J)];
- manifold mutual information I(S; T) = E[log vol(J_S) + log vol(J_T) - log vol(J_{S u T})];
- pairwise MPMI_ij = -E[log |sin angle(J_i, J_j)|] (0 for orthogonal columns);
- manifold total correlation TC = sum_i H_i - H = E[sum_i log ||J_i|| - log vol(J)] >= 0
  (Hadamard's inequality), 0 exactly when the columns are orthogonal;
- cross-model MCPMI: the MPMI formula for column i of one model and column j of another, both
  at the same x;
- (ours) the principal spectrum h + E[log s_k(J)] of J's singular values s_1 >= ... >= s_d: the
  latent-rotation-invariant version of the spectrum (equal to it when TC = 0, summing to H
  for a standard normal latent), which the degeneracy check uses.

Gram determinants are taken in float64. :func:`entropic_metrics` estimates all of them by
Monte Carlo over latents drawn from the prior or encoded from data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.distributions import Distribution, Independent, Normal

from sbiplug_flowanalysis.jacobians import Decoder, decoder_jacobian

__all__ = [
    "EntropicMetrics",
    "entropic_metrics",
    "jacobian_metrics",
    "latent_entropies",
    "log_volume",
    "manifold_entropy",
    "manifold_mutual_information",
    "mcpmi",
    "mpmi",
    "per_sample_total_correlation",
]

GAUSSIAN_ENTROPY = 0.5 * (1.0 + math.log(2.0 * math.pi))
"""Entropy of N(0, 1) in nats."""

_TINY = 1e-300


def _gram(jacobian: Tensor) -> Tensor:
    jacobian = jacobian.double()
    return jacobian.transpose(-1, -2) @ jacobian


def log_volume(jacobian: Tensor, columns: Sequence[int] | None = None) -> Tensor:
    """log vol(J_S) = 1/2 log det(J_S^T J_S), in float64.

    Arguments:
        jacobian: Jacobians, shape ``(n, D, d)``.
        columns: The index set S (all columns when ``None``).

    Returns:
        Log volumes, shape ``(n,)``.
    """
    if columns is not None:
        jacobian = jacobian[..., list(columns)]
    jacobian = jacobian.double()
    if jacobian.shape[-1] == jacobian.shape[-2]:
        return torch.linalg.slogdet(jacobian)[1]  # square: log|det J| directly, more precise
    return 0.5 * torch.linalg.slogdet(_gram(jacobian))[1]


def _log_norms(jacobian: Tensor) -> Tensor:
    return 0.5 * torch.log(jacobian.double().pow(2).sum(-2).clamp_min(_TINY))


def per_sample_total_correlation(jacobian: Tensor) -> Tensor:
    """sum_i log ||J_i|| - log vol(J) per latent, shape ``(n,)`` for J ``(n, D, d)``; >= 0."""
    return _log_norms(jacobian).sum(-1) - log_volume(jacobian)


def _log_sin_squared(a: Tensor, b: Tensor) -> Tensor:
    """log sin^2 of the angle between columns, broadcast: a ``(n, D, p)``, b ``(n, D, q)``."""
    a, b = a.double(), b.double()
    dots = a.transpose(-1, -2) @ b  # (n, p, q)
    norms_a = a.pow(2).sum(-2)  # (n, p)
    norms_b = b.pow(2).sum(-2)  # (n, q)
    products = norms_a.unsqueeze(-1) * norms_b.unsqueeze(-2)
    sin_squared = (products - dots.pow(2)) / products.clamp_min(_TINY)
    return torch.log(sin_squared.clamp_min(_TINY))


def mpmi(jacobian: Tensor) -> Tensor:
    """Pairwise manifold mutual information, shape ``(d, d)`` for J ``(n, D, d)``.

    MPMI_ij = -1/2 E[log(1 - cos^2 angle(J_i, J_j))]; the diagonal (infinite) is NaN.
    """
    values = -0.5 * _log_sin_squared(jacobian, jacobian).mean(0)
    eye = torch.eye(values.shape[-1], dtype=torch.bool)
    return values.masked_fill(eye, float("nan"))


def mcpmi(jacobian: Tensor, other: Tensor) -> Tensor:
    """Cross-model MCPMI of two models' Jacobians at the same data points.

    Arguments:
        jacobian: Model 1's Jacobians at its encodings of x, shape ``(n, D, d1)``.
        other: Model 2's Jacobians at its encodings of the same x, shape ``(n, D, d2)``.

    Returns:
        MCPMI_ij, shape ``(d1, d2)``; near 0 where latent i of model 1 and latent j of
        model 2 are orthogonal, large where they point the same way (matching latents).
    """
    if jacobian.shape[:2] != other.shape[:2]:
        raise ValueError(
            f"the Jacobians must be taken at the same n points in the same output space: "
            f"got shapes {tuple(jacobian.shape)} and {tuple(other.shape)}"
        )
    return -0.5 * _log_sin_squared(jacobian, other).mean(0)


def latent_entropies(latent: Any, dim: int) -> Tensor | None:
    """Per-dimension entropies h_i of a factorised latent, shape ``(dim,)``, or ``None``.

    Normal latents (``Normal``, ``Independent(Normal)``, zuko's ``DiagNormal``) have closed-form
    marginal entropies; for other latents the prior constant is left out (``None``).
    """
    base = latent
    while isinstance(base, Independent):
        base = base.base_dist
    if isinstance(base, Normal):
        entropies = base.entropy().double().reshape(-1)
        if entropies.numel() == 1:
            return entropies.expand(dim).clone()
        if entropies.numel() == dim:
            return entropies
    return None


@dataclass
class EntropicMetrics:
    """Monte Carlo estimates of the manifold entropic metrics of one decoder.

    Attributes:
        spectrum: Per-dimension entropies H_i in latent order, shape ``(d,)``.
        spectrum_se: Their Monte Carlo standard errors, shape ``(d,)``.
        mpmi: Pairwise manifold mutual information, shape ``(d, d)`` (NaN diagonal).
        total_correlation: Manifold total correlation (nats), >= 0.
        total_correlation_se: Its standard error.
        entropy: Full manifold entropy H (nats).
        entropy_se: Its standard error.
        prior_entropies: The latent's h_i, shape ``(d,)`` (zeros when ``prior_included`` is
            ``False``: the spectrum and entropy then omit the prior constant).
        directions: The mean unit direction of each column in output space (principal axis of
            E[u u^T], u = J_i / ||J_i||), shape ``(d, D)``.
        principal_spectrum: mean(h) + E[log s_k(J)] for the sorted singular values of J,
            shape ``(d,)``, descending: local principal stretches, whatever the latent rotation.
        principal_spectrum_se: Their standard errors, shape ``(d,)``.
        principal_directions: The mean k-th left singular vector in output space (principal
            axis of E[u_k u_k^T]), shape ``(d, D)``.
        num_samples: Latents averaged over.
        prior_included: Whether the prior's entropy is included.
    """

    spectrum: Tensor
    spectrum_se: Tensor
    mpmi: Tensor
    total_correlation: float
    total_correlation_se: float
    entropy: float
    entropy_se: float
    prior_entropies: Tensor
    directions: Tensor
    principal_spectrum: Tensor
    principal_spectrum_se: Tensor
    principal_directions: Tensor
    num_samples: int
    prior_included: bool = True

    @property
    def order(self) -> Tensor:
        """Latent indices from the widest to the narrowest direction, shape ``(d,)``."""
        return torch.argsort(self.spectrum, descending=True)

    @property
    def sorted_spectrum(self) -> Tensor:
        """The entropy spectrum sorted in descending order, shape ``(d,)``."""
        return self.spectrum[self.order]

    def degenerate(self, ratio: float = 0.1) -> Tensor:
        """Which principal directions are near-degenerate, shape ``(d,)`` (bool, descending).

        Principal direction k is near-degenerate when its stretch exp(E[log s_k]) is below
        ``ratio`` times the widest one's. The singular values, not the per-latent column norms,
        decide: two nearly parallel columns (high MPMI) each have a large norm while the
        posterior is thin across them.
        """
        spectrum = self.principal_spectrum
        return spectrum < spectrum.max() + math.log(ratio)

    def effective_dimension(self, ratio: float = 0.1) -> int:
        """Number of principal directions that are not near-degenerate (:meth:`degenerate`)."""
        return int((~self.degenerate(ratio)).sum())


def _directions(units: Tensor) -> Tensor:
    """Principal axes of E[u_i u_i^T] for unit vectors ``(n, D, d)``: ``(d, D)``."""
    second = torch.einsum("nDi,nEi->iDE", units, units) / len(units)  # (d, D, D)
    _, vectors = torch.linalg.eigh(second)
    top = vectors[..., -1]  # (d, D)
    # a sign convention: the largest component positive
    sign = torch.sign(top.gather(-1, top.abs().argmax(-1, keepdim=True)))
    return top * sign


def jacobian_metrics(jacobian: Tensor, prior_entropies: Tensor | None = None) -> EntropicMetrics:
    """All metrics from precomputed Jacobians (the Monte Carlo average over their rows).

    Arguments:
        jacobian: Decoder Jacobians at latents drawn from the prior or encoded from data,
            shape ``(n, D, d)``.
        prior_entropies: The latent's per-dimension entropies h_i, shape ``(d,)``; ``None``
            leaves the prior constant out (as in the paper's reference outputs).

    Returns:
        The :class:`EntropicMetrics`.
    """
    if jacobian.ndim != 3 or jacobian.shape[-2] < jacobian.shape[-1]:
        raise ValueError(
            f"jacobian must have shape (n, D, d) with D >= d (an injective decoder), got "
            f"{tuple(jacobian.shape)}"
        )
    n, _, d = jacobian.shape
    included = prior_entropies is not None
    h = torch.zeros(d, dtype=torch.float64) if prior_entropies is None else prior_entropies
    h = torch.as_tensor(h, dtype=torch.float64).reshape(d)
    log_norms = _log_norms(jacobian)  # (n, d)
    volumes = log_volume(jacobian)  # (n,)
    tc = log_norms.sum(-1) - volumes

    def se(values: Tensor) -> Tensor:
        return values.std(0) / math.sqrt(n) if n > 1 else torch.full_like(values[0], math.nan)

    double = jacobian.double()
    units = double / double.norm(dim=-2, keepdim=True).clamp_min(1e-150)
    left, singular, _ = torch.linalg.svd(double, full_matrices=False)  # (n, D, d), (n, d)
    log_singular = torch.log(singular.clamp_min(_TINY))

    return EntropicMetrics(
        spectrum=h + log_norms.mean(0),
        spectrum_se=se(log_norms),
        mpmi=mpmi(jacobian),
        total_correlation=float(tc.mean()),
        total_correlation_se=float(se(tc)),
        entropy=float(h.sum() + volumes.mean()),
        entropy_se=float(se(volumes)),
        prior_entropies=h,
        directions=_directions(units),
        principal_spectrum=h.mean() + log_singular.mean(0),
        principal_spectrum_se=se(log_singular),
        principal_directions=_directions(left),
        num_samples=n,
        prior_included=included,
    )


def _latents(latent: Any, z: Tensor | None, num_samples: int, seed: int | None) -> Tensor:
    if z is not None:
        if not isinstance(z, Tensor) or z.ndim != 2:
            raise ValueError(f"z must be a tensor of latents with shape (n, d), got {z!r}")
        return z
    if latent is None or not callable(getattr(latent, "sample", None)):
        raise ValueError(
            "pass latents z of shape (n, d), or a latent distribution with sample() to draw "
            f"them from (got latent={latent!r})"
        )
    generator_state = torch.random.get_rng_state()
    try:
        if seed is not None:
            torch.manual_seed(seed)
        with torch.no_grad():
            return latent.sample((num_samples,))
    finally:
        if seed is not None:
            torch.random.set_rng_state(generator_state)


def entropic_metrics(
    decoder: Decoder,
    latent: Distribution | Any = None,
    *,
    z: Tensor | None = None,
    num_samples: int = 2000,
    output_scale: Tensor | float | None = None,
    tangent_basis: Any = None,
    prior_entropies: Tensor | None = None,
    mode: str = "auto",
    chunk_size: int = 2048,
    seed: int | None = None,
    show_progress_bars: bool = False,
) -> EntropicMetrics:
    """Monte Carlo estimates of the manifold entropic metrics of a batched decoder.

    Arguments:
        decoder: Latents ``(n, d)`` -> outputs ``(n, D)``.
        latent: The latent distribution (``sample((n,))`` gives ``(n, d)``); a factorised
            normal also gives the prior entropies h_i.
        z: Latents to average over instead of prior draws, shape ``(n, d)`` (e.g. encoded
            data: z = encoder(x)).
        num_samples: Prior draws when ``z`` is not given.
        output_scale: Per-output scale, shape ``(D,)`` or a scalar: the decoder outputs
            standardised values x_std and the data are x = output_scale * x_std + shift;
            the Jacobian rows are rescaled so that entropies are in data units.
        tangent_basis: For a latent on a manifold embedded in R^d': a function z ``(n, d')``
            -> orthonormal tangent bases ``(n, d', d)``; the columns are then J Q.
        prior_entropies: Override of the latent's h_i, shape ``(d,)``.
        mode: The Jacobian mode of :func:`~sbiplug_flowanalysis.jacobians.decoder_jacobian`.
        chunk_size: Latents per vectorised Jacobian chunk.
        seed: Seed of the prior draws (the global RNG is restored afterwards).
        show_progress_bars: Show a progress bar over the Jacobian chunks.

    Returns:
        The :class:`EntropicMetrics`.
    """
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 2:
        raise ValueError(f"num_samples must be an integer >= 2, got {num_samples!r}")
    latents = _latents(latent, z, num_samples, seed)
    jacobian = decoder_jacobian(
        decoder,
        latents,
        mode=mode,
        chunk_size=chunk_size,
        show_progress_bars=show_progress_bars,
    ).double()
    if tangent_basis is not None:
        jacobian = jacobian @ tangent_basis(latents).double()
    if output_scale is not None:
        scale = torch.as_tensor(output_scale, dtype=torch.float64).reshape(-1)
        if scale.numel() not in (1, jacobian.shape[1]):
            raise ValueError(
                f"output_scale must be a scalar or have {jacobian.shape[1]} entries (one per "
                f"output), got {scale.numel()}"
            )
        jacobian = jacobian * scale.reshape(-1, 1)
    d = jacobian.shape[-1]
    if prior_entropies is None and tangent_basis is None:
        prior_entropies = latent_entropies(latent, d) if latent is not None else None
    return jacobian_metrics(jacobian, prior_entropies)


def manifold_entropy(
    jacobian: Tensor, columns: Sequence[int], prior_entropies: Tensor | None = None
) -> float:
    """H(q_S) = sum_{i in S} h_i + E[log vol(J_S)] for J ``(n, D, d)`` and index set S."""
    columns = list(columns)
    h = 0.0 if prior_entropies is None else float(torch.as_tensor(prior_entropies)[columns].sum())
    return h + float(log_volume(jacobian, columns).mean())


def manifold_mutual_information(
    jacobian: Tensor, first: Sequence[int], second: Sequence[int]
) -> float:
    """I(S; T) = E[log vol(J_S) + log vol(J_T) - log vol(J_{S u T})] for disjoint S, T."""
    first, second = list(first), list(second)
    if not first or not second or set(first) & set(second):
        raise ValueError(f"the index sets must be non-empty and disjoint, got {first} and {second}")
    joint = log_volume(jacobian, first + second)
    return float((log_volume(jacobian, first) + log_volume(jacobian, second) - joint).mean())
