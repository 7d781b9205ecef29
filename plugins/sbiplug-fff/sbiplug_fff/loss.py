"""The free-form flow training objective: Hutchinson vectors, trace surrogate, exact log-det.

Draxler et al., *Free-form Flows: Make Any Architecture a Normalizing Flow* (arXiv 2310.16624);
Sorrenson et al., *Learning Distributions on Manifolds with Free-form Flows* (arXiv 2312.09852).

With encoder f and decoder g ~ f^-1, the gradient of log|det J_f(x)| equals the gradient of the
surrogate v^T J_f(x) SG[J_g(z) v] in expectation over Hutchinson vectors v (E[v v^T] = I on the
tangent space at z = f(x); SG = stop-gradient). J_g v comes from one forward-mode pass through
the decoder, v^T J_f from one reverse-mode pass through the encoder with ``create_graph``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.autograd.forward_ad as fwAD
from torch import Tensor
from torch.func import jacfwd, vmap

__all__ = ["hutchinson_vectors", "tangent_log_abs_det", "volume_change_surrogate"]

MapWithRaw = Callable[[Tensor], tuple[Tensor, Tensor]]


def hutchinson_vectors(basis: Tensor, num_vectors: int = 1) -> Tensor:
    """Orthogonal Hutchinson vectors in the tangent spaces spanned by ``basis``.

    Arguments:
        basis: Orthonormal tangent bases, shape ``(B, D, n)``.
        num_vectors: K <= n; K = n gives the exact trace.

    Returns:
        Vectors ``(B, D, K)``: K orthogonal tangent vectors of norm sqrt(n) per row, so that
        E[v v^T] = Q Q^T, the tangent projector (unbiased on the tangent space).
    """
    batch, _, n = basis.shape
    if not 1 <= num_vectors <= n:
        raise ValueError(f"the number of Hutchinson vectors must be in [1, {n}], got {num_vectors}")
    gaussian = torch.randn(batch, n, num_vectors, dtype=basis.dtype, device=basis.device)
    orthonormal = torch.linalg.qr(gaussian).Q  # (B, n, K)
    return basis @ orthonormal * math.sqrt(n)


def volume_change_surrogate(
    x: Tensor,
    encode: MapWithRaw,
    decode: MapWithRaw,
    basis_at: Callable[[Tensor], Tensor],
    num_vectors: int = 1,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Encode, decode and the trace surrogate whose gradient is that of log|det J_f|.

    Arguments:
        x: Data with ``requires_grad``, shape ``(B, D)``.
        encode: x -> (z, raw z before projection); the condition is bound inside.
        decode: z -> (x1, raw x1 before projection).
        basis_at: Tangent basis at z, ``(B, D) -> (B, D, n)``.
        num_vectors: Number K of Hutchinson vectors.

    Returns:
        z, raw z, x1 = g(z), raw x1 (each ``(B, D)``) and the surrogate ``(B,)``, whose
        gradient reaches only the encoder.
    """
    z, z_raw = encode(x)
    vectors = hutchinson_vectors(basis_at(z.detach()), num_vectors)
    surrogate = x.new_zeros(x.shape[0])
    for k in range(num_vectors):
        v = vectors[..., k]
        with fwAD.dual_level():
            x1_dual, x1_raw_dual = decode(fwAD.make_dual(z, v))
            x1, decoder_jvp = fwAD.unpack_dual(x1_dual)
            x1_raw = fwAD.unpack_dual(x1_raw_dual).primal
        (encoder_vjp,) = torch.autograd.grad(z, x, v, create_graph=True)
        surrogate = surrogate + (encoder_vjp * decoder_jvp.detach()).sum(-1) / num_vectors
    return z, z_raw, x1, x1_raw, surrogate


def tangent_log_abs_det(
    decode_one: Callable[[Tensor, Tensor], Tensor],
    z: Tensor,
    condition: Tensor,
    basis_at: Callable[[Tensor], Tensor],
    chunk_size: int | None = 1024,
) -> tuple[Tensor, Tensor]:
    """log|det R^T J_g(z) Q| with Q, R orthonormal tangent bases at z and at x1 = g(z).

    The Jacobian is taken with ``vmap(jacfwd)`` with respect to tangent coordinates u of
    z + Q u, which yields J_g(z) Q (D x n) with n forward passes, chunked to bound memory.

    Arguments:
        decode_one: (z ``(D,)``, condition ``(C,)``) -> x1 ``(D,)``, projected.
        z: Latent points on the manifold, shape ``(N, D)``.
        condition: Conditions, shape ``(N, C)``.
        basis_at: Tangent bases, ``(N, D) -> (N, D, n)``.
        chunk_size: Rows per vectorised Jacobian chunk.

    Returns:
        x1 ``(N, D)`` and log|det| ``(N,)``.
    """
    basis_z = basis_at(z)
    n = basis_z.shape[-1]

    def decode_tangent(u: Tensor, z0: Tensor, q: Tensor, c: Tensor) -> Tensor:
        return decode_one(z0 + q @ u, c)

    coordinates = z.new_zeros(z.shape[0], n)
    jacobian = vmap(jacfwd(decode_tangent), chunk_size=chunk_size)(
        coordinates, z, basis_z, condition
    )
    x1 = vmap(decode_one, chunk_size=chunk_size)(z, condition)
    basis_x1 = basis_at(x1)
    reduced = basis_x1.transpose(-1, -2) @ jacobian  # (N, n, n)
    return x1, torch.linalg.slogdet(reduced).logabsdet
