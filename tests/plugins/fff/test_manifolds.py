"""Manifolds and distributions of sbiplug_fff: identities, normalisers, errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch.func import jacrev, vmap

from sbiplug_fff.distributions import ProductVonMises, UniformManifold, VonMisesFisher
from sbiplug_fff.manifolds import Manifold, get_manifold, so3, sphere, torus

MANIFOLDS = [sphere(2), sphere(4), torus(1), torus(3), so3()]


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _off_manifold(manifold: Manifold, n: int = 64) -> torch.Tensor:
    return manifold.sample_uniform((n,)) * 1.7 + 0.3 * torch.randn(n, manifold.embedding_dim)


@pytest.mark.parametrize("manifold", MANIFOLDS, ids=repr)
def test_projection_is_idempotent_and_lands_on_the_manifold(manifold: Manifold) -> None:
    points = manifold.project(_off_manifold(manifold))
    assert manifold.contains(points, atol=1e-5).all()
    torch.testing.assert_close(manifold.project(points), points, atol=1e-5, rtol=0)
    on = manifold.sample_uniform((32,))
    assert manifold.contains(on, atol=1e-5).all()
    torch.testing.assert_close(manifold.project(on), on, atol=1e-5, rtol=0)


@pytest.mark.parametrize("manifold", MANIFOLDS, ids=repr)
def test_tangent_projector_and_basis(manifold: Manifold) -> None:
    p = manifold.sample_uniform((16,))
    v = torch.randn(16, manifold.embedding_dim)
    tangent = manifold.tangent_projection(p, v)
    # a projector: idempotent and self-adjoint
    torch.testing.assert_close(manifold.tangent_projection(p, tangent), tangent, atol=1e-5, rtol=0)
    w = torch.randn(16, manifold.embedding_dim)
    left = (manifold.tangent_projection(p, w) * v).sum(-1)
    torch.testing.assert_close(left, (w * tangent).sum(-1), atol=1e-5, rtol=0)
    # tangent vectors are velocities of curves on M: d/dt pi(p + t v) at 0 equals P v
    velocity = torch.func.jvp(manifold.project, (p,), (tangent,))[1]
    torch.testing.assert_close(velocity, tangent, atol=1e-4, rtol=0)
    basis = manifold.tangent_basis(p)
    assert basis.shape == (16, manifold.embedding_dim, manifold.dim)
    eye = torch.eye(manifold.dim).expand(16, -1, -1)
    torch.testing.assert_close(basis.transpose(-1, -2) @ basis, eye, atol=1e-5, rtol=0)
    columns = basis.transpose(-1, -2)  # (16, n, D)
    projected = manifold.tangent_projection(p.unsqueeze(-2).expand_as(columns), columns)
    torch.testing.assert_close(projected, columns, atol=1e-5, rtol=0)
    # the basis spans the whole tangent space: P v = Q Q^T v
    reconstructed = (basis @ (basis.transpose(-1, -2) @ v.unsqueeze(-1))).squeeze(-1)
    torch.testing.assert_close(reconstructed, tangent, atol=1e-5, rtol=0)


def test_sphere_and_torus_volumes_match_monte_carlo_shell_estimates() -> None:
    # vol(M) ~ vol({x : dist(x, M) < eps}) / (normal ball volume): a tube estimate in a box
    generator = torch.Generator().manual_seed(1)
    for manifold, normal_dim in [(sphere(2), 1), (torus(1), 1), (torus(2), 2)]:
        d, eps, half, n = manifold.embedding_dim, 0.05, 1.2, 1_000_000
        x = (torch.rand(n, d, generator=generator, dtype=torch.float64) * 2 - 1) * half
        inside = (x - manifold.project(x)).norm(dim=-1) < eps
        ball = math.pi ** (normal_dim / 2) / math.gamma(normal_dim / 2 + 1) * eps**normal_dim
        estimate = inside.double().mean() * (2 * half) ** d / ball
        fraction = inside.double().mean()
        standard_error = (2 * half) ** d / ball * math.sqrt(fraction * (1 - fraction) / n)
        # the tube formula has an O(eps^2) curvature correction: about 0.1% here
        assert abs(estimate - manifold.volume) < 4 * standard_error + 2e-3 * manifold.volume


def test_so3_volume_matches_exponential_coordinates_integral() -> None:
    # vol(SO(3)) = int_{|w| < pi} sqrt(det G(w)) dw, G the pullback of the R^9 metric by exp
    n = 1500
    generator = torch.Generator().manual_seed(2)
    direction = torch.randn(n, 3, generator=generator, dtype=torch.float64)
    direction = direction / direction.norm(dim=-1, keepdim=True)
    radius = math.pi * torch.rand(n, 1, generator=generator, dtype=torch.float64) ** (1 / 3)
    omega = direction * radius

    def exp_flat(w: torch.Tensor) -> torch.Tensor:
        zero = torch.zeros((), dtype=w.dtype)
        hat = torch.stack([zero, -w[2], w[1], w[2], zero, -w[0], -w[1], w[0], zero]).reshape(3, 3)
        return torch.linalg.matrix_exp(hat).reshape(9)

    jacobian = vmap(jacrev(exp_flat))(omega)
    density = torch.linalg.det(jacobian.transpose(-1, -2) @ jacobian).sqrt()
    ball = 4 / 3 * math.pi**4
    estimate = float(density.mean() * ball)
    standard_error = float(density.std() * ball / math.sqrt(n))
    assert so3().volume == pytest.approx(16 * math.sqrt(2) * math.pi**2)
    assert abs(estimate - so3().volume) < 4 * standard_error


def test_haar_sampling_has_the_known_trace_moments() -> None:
    # under Haar measure E[tr R] = 0 and E[(tr R)^2] = 1
    traces = so3().as_matrix(so3().sample_uniform((200_000,))).diagonal(dim1=-2, dim2=-1).sum(-1)
    assert abs(float(traces.mean())) < 4 * 1 / math.sqrt(200_000)
    assert abs(float(traces.pow(2).mean()) - 1) < 0.02


def test_distributions_integrate_to_one_and_have_manifold_support() -> None:
    n = 400_000
    for distribution in [
        VonMisesFisher(torch.tensor([0.0, 0.6, 0.8]), 4.0),
        VonMisesFisher(torch.nn.functional.normalize(torch.ones(5), dim=0), 3.0),
        ProductVonMises(torch.tensor([3.0, -1.0]), torch.tensor([2.0, 0.5])),
        UniformManifold("so3"),
    ]:
        manifold = distribution.manifold
        uniform = manifold.sample_uniform((n,))
        values = distribution.log_prob(uniform).double().exp() * manifold.volume
        standard_error = float(values.std()) / math.sqrt(n)
        assert abs(float(values.mean()) - 1) < 4 * standard_error + 1e-3
        draws = distribution.sample((1000,))
        assert distribution.support.check(draws).all()
        assert not distribution.support.check(draws * 1.01).any()


def test_vmf_sampler_matches_its_density() -> None:
    # E[mu . x] = coth(kappa) - 1 / kappa on S^2
    kappa = 3.0
    mu = torch.tensor([1.0, 0.0, 0.0])
    draws = VonMisesFisher(mu, kappa).sample((100_000,))
    expected = 1 / math.tanh(kappa) - 1 / kappa
    assert abs(float((draws @ mu).mean()) - expected) < 0.005
    # Wood's algorithm on S^4: compare with importance-weighted uniform draws
    mu5 = torch.nn.functional.normalize(torch.ones(5), dim=0)
    draws5 = VonMisesFisher(mu5, 3.0).sample((100_000,))
    uniform = sphere(4).sample_uniform((400_000,))
    weights = torch.exp(3.0 * uniform @ mu5)
    expected5 = float((weights * (uniform @ mu5)).sum() / weights.sum())
    assert abs(float((draws5 @ mu5).mean()) - expected5) < 0.01


def test_unknown_manifold_lists_the_supported_ones() -> None:
    with pytest.raises(ValueError, match="sphere, torus, so3"):
        get_manifold("hyperbolic")
    with pytest.raises(ValueError, match="last dimension 4"):
        get_manifold("sphere", 4).check(torch.ones(2, 3))
    with pytest.raises(ValueError, match="unit vectors"):
        sphere(2).check(torch.ones(2, 3), "parameters")
