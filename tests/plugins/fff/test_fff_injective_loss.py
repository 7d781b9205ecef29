"""FIF objective: Hutchinson vectors, the surrogate's gradient and the exact Gram log-det."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sbiplug_fff.injective_loss import (
    half_log_det_gram,
    injective_surrogate,
    latent_hutchinson_vectors,
)

D, d = 5, 2


def _encoder() -> nn.Module:
    torch.manual_seed(3)
    return nn.Sequential(nn.Linear(D, 8), nn.Tanh(), nn.Linear(8, d)).double()


def _local_pseudo_inverse_decoder(encoder: nn.Module, x0: torch.Tensor):
    """g(z) = x0 + J_f(x0)^+ (z - f(x0)): J_g(f(x0)) = J_f(x0)^+ exactly (fixed, no gradient)."""
    jacobian = torch.func.jacrev(encoder)(x0).detach()  # (d, D)
    pinv, z0 = torch.linalg.pinv(jacobian), encoder(x0).detach()
    return lambda z: x0 + (z - z0) @ pinv.T


def _exact_gradient(encoder: nn.Module, x0: torch.Tensor) -> list[torch.Tensor]:
    """Gradient of 1/2 log det(J_f J_f^T) = -1/2 log det(J_g^T J_g) when J_g = J_f^+."""
    jacobian = torch.func.jacrev(encoder, argnums=0)(x0)
    value = 0.5 * torch.logdet(jacobian @ jacobian.T)
    return _grad(value, encoder)


def _surrogate_gradient(encoder, decode, x0, vectors) -> list[torch.Tensor]:
    x = x0.expand(vectors.shape[0], D).clone().requires_grad_(True)
    _, _, surrogate = injective_surrogate(x, encoder, decode, vectors=vectors)
    return _grad(surrogate.mean(), encoder)


def _grad(value: torch.Tensor, module: nn.Module) -> list[torch.Tensor]:
    """Gradients w.r.t. every parameter; zeros for the output bias, which J_f does not see."""
    parameters = list(module.parameters())
    grads = torch.autograd.grad(value, parameters, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(parameters, grads)]


def test_hutchinson_vectors_are_orthogonal_with_identity_second_moment():
    torch.manual_seed(0)
    v = latent_hutchinson_vectors(5000, 3, 2)
    gram = v.transpose(1, 2) @ v
    torch.testing.assert_close(gram, 3.0 * torch.eye(2).expand_as(gram), atol=1e-4, rtol=0)
    second_moment = torch.einsum("bik,bjk->ij", v, v) / (2 * len(v))
    torch.testing.assert_close(second_moment, torch.eye(3), atol=0.06, rtol=0)
    with pytest.raises(ValueError, match=r"\[1, 3\]"):
        latent_hutchinson_vectors(2, 3, 4)


def test_exact_trace_surrogate_gives_the_maximum_likelihood_gradient():
    """K = d orthogonal vectors give the trace exactly: the gradient of the volume term."""
    encoder = _encoder()
    x0 = torch.randn(D, dtype=torch.float64)
    decode = _local_pseudo_inverse_decoder(encoder, x0)
    vectors = latent_hutchinson_vectors(1, d, d, like=x0)
    for got, want in zip(
        _surrogate_gradient(encoder, decode, x0, vectors), _exact_gradient(encoder, x0)
    ):
        torch.testing.assert_close(got, want, atol=1e-10, rtol=1e-8)


def test_single_vector_surrogate_gradient_is_unbiased():
    """K = 1: the mean over many draws matches the exact gradient within Monte Carlo error."""
    encoder = _encoder()
    x0 = torch.randn(D, dtype=torch.float64)
    decode = _local_pseudo_inverse_decoder(encoder, x0)
    torch.manual_seed(1)
    draws = 40000
    vectors = latent_hutchinson_vectors(draws, d, 1, like=x0)
    got = torch.cat([g.flatten() for g in _surrogate_gradient(encoder, decode, x0, vectors)])
    want = torch.cat([g.flatten() for g in _exact_gradient(encoder, x0)])
    # per-draw spread bounds the error of the mean: a few standard errors
    assert torch.linalg.vector_norm(got - want) < 0.05 * torch.linalg.vector_norm(want) + 1e-3


def test_gram_log_det_of_a_linear_map_matches_the_closed_form():
    torch.manual_seed(2)
    weight = torch.randn(D, d)
    bias = torch.randn(D)
    z = torch.randn(7, d)
    x1, half_log_det = half_log_det_gram(
        lambda row, c: weight @ row + bias, z, torch.zeros(7, 0), chunk_size=3
    )
    torch.testing.assert_close(x1, z @ weight.T + bias)
    expected = 0.5 * torch.logdet(weight.double().T @ weight.double())
    assert half_log_det.dtype == torch.float64
    torch.testing.assert_close(half_log_det, expected.expand(7), atol=1e-6, rtol=0)
