"""The free-form flow surrogate: trace expectation and log-det gradient (small networks)."""

from __future__ import annotations

import math

import pytest
import torch
from torch.func import jacrev, vmap

from sbiplug_fff.loss import hutchinson_vectors, tangent_log_abs_det, volume_change_surrogate
from sbiplug_fff.manifolds import Euclidean, so3, sphere


def _random_maps(d: int, seed: int):
    generator = torch.Generator().manual_seed(seed)
    w1, w2 = (torch.randn(d, d, generator=generator) / math.sqrt(d) for _ in range(2))

    def encode(x):
        raw = x + 0.5 * torch.tanh(x @ w1.T)
        return raw, raw

    def decode(z):
        raw = z - 0.3 * torch.sin(z @ w2.T)
        return raw, raw

    return encode, decode


def _exact_trace(x, encode, decode, basis):
    """tr(Q^T J_f(x) J_g(f(x)) Q), Q the tangent basis at z, with exact Jacobians."""
    z = encode(x)[0]
    jf = vmap(jacrev(lambda v: encode(v)[0]))(x)
    jg = vmap(jacrev(lambda v: decode(v)[0]))(z)
    q = basis(z)
    return (q.transpose(-1, -2) @ jf @ jg @ q).diagonal(dim1=-2, dim2=-1).sum(-1)


def test_hutchinson_vectors_are_orthogonal_tangent_vectors_of_norm_sqrt_n() -> None:
    torch.manual_seed(0)
    p = so3().sample_uniform((8,))
    basis = so3().tangent_basis(p)
    v = hutchinson_vectors(basis, 3)
    gram = v.transpose(-1, -2) @ v
    torch.testing.assert_close(gram, 3 * torch.eye(3).expand(8, 3, 3), atol=1e-4, rtol=0)
    torch.testing.assert_close(so3().tangent_projection(p, v[..., 0]), v[..., 0], atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="Hutchinson"):
        hutchinson_vectors(basis, 4)


@pytest.mark.parametrize("manifold", [Euclidean(3), sphere(2)], ids=repr)
def test_surrogate_with_k_equal_n_is_the_exact_trace(manifold) -> None:
    torch.manual_seed(1)
    encode_raw, decode_raw = _random_maps(manifold.embedding_dim, seed=2)

    def encode(x):
        raw = encode_raw(x)[0]
        return manifold.project(raw), raw

    def decode(z):
        raw = decode_raw(z)[0]
        return manifold.project(raw), raw

    x = manifold.project(torch.randn(16, manifold.embedding_dim)).requires_grad_(True)
    *_, surrogate = volume_change_surrogate(x, encode, decode, manifold.tangent_basis, manifold.dim)
    exact = _exact_trace(x.detach(), encode, decode, manifold.tangent_basis)
    torch.testing.assert_close(surrogate.detach(), exact, atol=1e-4, rtol=1e-4)


def test_single_vector_surrogate_is_unbiased() -> None:
    # one Hutchinson vector per row, 20 000 rows at the same point: mean = exact trace
    torch.manual_seed(3)
    manifold = sphere(2)
    encode_raw, decode_raw = _random_maps(3, seed=4)

    def encode(x):
        raw = encode_raw(x)[0]
        return manifold.project(raw), raw

    def decode(z):
        raw = decode_raw(z)[0]
        return manifold.project(raw), raw

    point = manifold.project(torch.tensor([[0.3, -0.5, 0.8]]))
    x = point.expand(20_000, 3).clone().requires_grad_(True)
    *_, surrogate = volume_change_surrogate(x, encode, decode, manifold.tangent_basis, 1)
    exact = _exact_trace(point, encode, decode, manifold.tangent_basis)
    standard_error = float(surrogate.detach().std()) / math.sqrt(len(surrogate))
    assert abs(float(surrogate.mean()) - float(exact)) < 4 * standard_error


def _log_det_on_sphere(matrix: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Exact log|det R^T J_f Q| of f(x) = A x / |A x| restricted to S^2."""
    manifold = sphere(2)
    jacobian = vmap(jacrev(lambda v: manifold.project(matrix @ v)))(x)
    q = manifold.tangent_basis(x)
    r = manifold.tangent_basis(manifold.project(x @ matrix.T))
    return torch.linalg.slogdet(r.transpose(-1, -2) @ jacobian @ q).logabsdet


def test_surrogate_gradient_matches_exact_log_det_gradient_on_the_sphere() -> None:
    # f(x) = pi(A x) has the exact inverse g(z) = pi(A^-1 z) on S^2, so the surrogate's
    # gradient in A must equal the gradient of the tangent log-determinant: exactly with
    # K = n vectors, and on average with K = 1.
    torch.manual_seed(5)
    manifold = sphere(2)
    matrix = (torch.eye(3) + 0.4 * torch.randn(3, 3)).requires_grad_(True)
    inverse = torch.linalg.inv(matrix.detach())
    x = manifold.sample_uniform((64,))

    def encode(v):
        raw = v @ matrix.T
        return manifold.project(raw), raw

    def decode(z):
        raw = z @ inverse.T
        return manifold.project(raw), raw

    exact = torch.autograd.grad(_log_det_on_sphere(matrix, x).sum(), matrix)[0]
    *_, surrogate = volume_change_surrogate(
        x.clone().requires_grad_(True), encode, decode, manifold.tangent_basis, 2
    )
    estimate = torch.autograd.grad(surrogate.sum(), matrix)[0]
    torch.testing.assert_close(estimate, exact, atol=1e-4, rtol=1e-4)

    repeats = 400
    many = x.repeat(repeats, 1).requires_grad_(True)
    *_, surrogate = volume_change_surrogate(many, encode, decode, manifold.tangent_basis, 1)
    single = torch.autograd.grad(surrogate.sum() / repeats, matrix)[0]
    assert float((single - exact).abs().max()) < 0.05 * float(exact.abs().max()) + 0.2


def test_surrogate_gradient_matches_exact_log_det_gradient_for_a_residual_map() -> None:
    # f(x) = x + 0.4 tanh(W x + b) with |W| < 1 is invertible; g solves f(x) = z by fixed-point
    # iteration (a contraction), so J_g = J_f^-1 to float precision.
    torch.manual_seed(6)
    weight = torch.randn(3, 3)
    weight = (weight / torch.linalg.matrix_norm(weight, 2)).requires_grad_(True)
    bias = torch.randn(3)
    x = torch.randn(32, 3)

    def forward(v, w):
        return v + 0.4 * torch.tanh(v @ w.T + bias)

    def encode(v):
        raw = forward(v, weight)
        return raw, raw

    def decode(z):
        fixed = weight.detach()
        v = z
        for _ in range(60):
            v = z - 0.4 * torch.tanh(v @ fixed.T + bias)
        return v, v

    jacobian = vmap(jacrev(lambda v: forward(v, weight)))(x)
    exact = torch.autograd.grad(torch.linalg.slogdet(jacobian).logabsdet.sum(), weight)[0]
    *_, surrogate = volume_change_surrogate(
        x.clone().requires_grad_(True), encode, decode, Euclidean(3).tangent_basis, 3
    )
    estimate = torch.autograd.grad(surrogate.sum(), weight)[0]
    torch.testing.assert_close(estimate, exact, atol=1e-4, rtol=1e-4)


def test_tangent_log_det_of_isometries_is_zero() -> None:
    torch.manual_seed(7)
    rotation = so3().as_matrix(so3().sample_uniform(()))
    cases = [
        (sphere(2), lambda z, c: z),
        (sphere(2), lambda z, c: sphere(2).project(rotation @ z)),
        (so3(), lambda z, c: so3().project(z)),
        (so3(), lambda z, c: (rotation @ so3().as_matrix(z)).reshape(9)),
    ]
    for manifold, decode_one in cases:
        z = manifold.sample_uniform((10,))
        x1, log_det = tangent_log_abs_det(decode_one, z, torch.zeros(10, 0), manifold.tangent_basis)
        assert manifold.contains(x1, atol=1e-5).all()
        torch.testing.assert_close(log_det, torch.zeros(10), atol=1e-5, rtol=0)
