"""The free-form injective flow (FIF) objective and its exact manifold log-density.

Sorrenson, Draxler, Rousselot, Hummerich, Zimmermann, Köthe, *Lifting Architectural Constraints
of Injective Flows* (ICLR 2024, arXiv 2306.01843). With an encoder f: R^D -> R^d and a decoder
g: R^d -> R^D (g ~ f^-1 on the learned manifold g(R^d)), the density on the manifold is

    log p(x) = log p_Z(f(x)) - 1/2 log det(J_g^T J_g),   J_g = dg/dz at z = f(x)  (D x d).

The gradient of the volume term is estimated by the surrogate v^T J_f(x) SG[J_g(z) v] with
latent Hutchinson vectors v in R^d (E[v v^T] = I): a forward-mode pass through g and a
reverse-mode pass through f with ``create_graph``; the encoder Jacobian is taken at the (noisy)
data point x, not at its projection g(f(x)), which keeps the manifold from curving without bound.
At evaluation J_g is built column by column with forward-mode Jacobians and the Gram matrix
J_g^T J_g is formed and factorised in float64.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.autograd.forward_ad as fwAD
from torch import Tensor
from torch.func import jacfwd, vmap

__all__ = ["half_log_det_gram", "injective_surrogate", "latent_hutchinson_vectors"]


def latent_hutchinson_vectors(
    batch: int, latent_features: int, num_vectors: int = 1, *, like: Tensor | None = None
) -> Tensor:
    """K orthogonal vectors of norm sqrt(d) per row, so that E[v v^T] = I_d.

    Arguments:
        batch: Number of rows B.
        latent_features: Latent dimension d.
        num_vectors: K in [1, d]; K = d gives the exact trace.
        like: A tensor whose dtype and device the vectors take.

    Returns:
        Vectors of shape ``(B, d, K)``.
    """
    if not 1 <= num_vectors <= latent_features:
        raise ValueError(
            f"the number of Hutchinson vectors must be in [1, {latent_features}], got {num_vectors}"
        )
    options = {} if like is None else {"dtype": like.dtype, "device": like.device}
    gaussian = torch.randn(batch, latent_features, num_vectors, **options)
    return torch.linalg.qr(gaussian).Q * math.sqrt(latent_features)


def injective_surrogate(
    x: Tensor,
    encode: Callable[[Tensor], Tensor],
    decode: Callable[[Tensor], Tensor],
    num_vectors: int = 1,
    vectors: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Encode, decode and the surrogate whose gradient estimates that of -1/2 log det(J_g^T J_g).

    Arguments:
        x: Data with ``requires_grad``, shape ``(B, D)``.
        encode: x ``(B, D)`` -> z ``(B, d)``; a condition is bound inside.
        decode: z ``(B, d)`` -> x1 ``(B, D)``.
        num_vectors: Number K of Hutchinson vectors.
        vectors: Optional fixed vectors ``(B, d, K)`` (tests); drawn when ``None``.

    Returns:
        z ``(B, d)``, x1 = g(z) ``(B, D)`` and the surrogate ``(B,)``. Its gradient reaches only
        the encoder; with J_f = J_g^+ it equals the gradient of 1/2 log det(J_f J_f^T) =
        -1/2 log det(J_g^T J_g) in expectation.
    """
    z = encode(x)
    if vectors is None:
        vectors = latent_hutchinson_vectors(z.shape[0], z.shape[1], num_vectors, like=z)
    surrogate = x.new_zeros(x.shape[0])
    x1 = None
    for k in range(vectors.shape[-1]):
        v = vectors[..., k]
        with fwAD.dual_level():
            x1_dual = decode(fwAD.make_dual(z, v))
            x1_k, decoder_jvp = fwAD.unpack_dual(x1_dual)
        x1 = x1_k if x1 is None else x1
        (encoder_vjp,) = torch.autograd.grad(z, x, v, create_graph=True)
        surrogate = surrogate + (encoder_vjp * decoder_jvp.detach()).sum(-1) / vectors.shape[-1]
    assert x1 is not None
    return z, x1, surrogate


def half_log_det_gram(
    decode_one: Callable[[Tensor, Tensor], Tensor],
    z: Tensor,
    condition: Tensor,
    chunk_size: int | None = 256,
) -> tuple[Tensor, Tensor]:
    """1/2 log det(J_g^T J_g) of the decoder at latents z, with the Gram matrix in float64.

    Arguments:
        decode_one: (z ``(d,)``, condition ``(C,)``) -> x ``(D,)``.
        z: Latents, shape ``(N, d)``.
        condition: Conditions, shape ``(N, C)`` (``C = 0`` for none).
        chunk_size: Rows per vectorised Jacobian chunk (bounds memory).

    Returns:
        x1 = g(z) ``(N, D)`` and 1/2 log det(J^T J) ``(N,)`` in float64.
    """
    jacobian = vmap(jacfwd(decode_one), chunk_size=chunk_size)(z, condition)  # (N, D, d)
    x1 = vmap(decode_one, chunk_size=chunk_size)(z, condition)
    jacobian = jacobian.double()
    gram = jacobian.transpose(-1, -2) @ jacobian
    cholesky, info = torch.linalg.cholesky_ex(gram)
    half_log_det = cholesky.diagonal(dim1=-2, dim2=-1).log().sum(-1)
    singular = info > 0
    if bool(singular.any()):  # a rank-deficient decoder: no density on a d-manifold there
        half_log_det = torch.where(singular, torch.full_like(half_log_det, -math.inf), half_log_det)
    return x1, half_log_det
