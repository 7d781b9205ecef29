"""Manifold entropic metrics: closed forms for linear decoders and the identities between them."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.distributions import Independent, Normal

from sbiplug_flowanalysis import (
    decoder_jacobian,
    entropic_metrics,
    jacobian_metrics,
    manifold_entropy,
    manifold_mutual_information,
    mcpmi,
    per_sample_total_correlation,
)
from sbiplug_flowanalysis.metrics import GAUSSIAN_ENTROPY

torch.set_default_dtype(torch.float32)


def _normal(d: int) -> Independent:
    return Independent(Normal(torch.zeros(d), torch.ones(d)), 1)


def _linear(matrix: torch.Tensor):
    return lambda z: z @ matrix.T


@pytest.mark.parametrize("shape", [(3, 3), (5, 2)])
def test_linear_decoder_closed_forms(shape):
    generator = torch.Generator().manual_seed(0)
    matrix = torch.randn(*shape, generator=generator, dtype=torch.float64)
    metrics = entropic_metrics(_linear(matrix.float()), _normal(shape[1]), num_samples=64, seed=1)
    norms = matrix.norm(dim=0)
    half_log_det = 0.5 * torch.logdet(matrix.T @ matrix)
    # H_i = 1/2 (1 + log 2 pi) + log ||a_i||; TC = sum log ||a_i|| - 1/2 log det(A^T A)
    torch.testing.assert_close(metrics.spectrum, GAUSSIAN_ENTROPY + norms.log(), atol=1e-5, rtol=0)
    assert metrics.total_correlation == pytest.approx(
        float(norms.log().sum() - half_log_det), abs=1e-5
    )
    assert metrics.entropy == pytest.approx(
        shape[1] * GAUSSIAN_ENTROPY + float(half_log_det), abs=1e-5
    )
    # H = sum_i H_i - TC, and a constant Jacobian has zero Monte Carlo error
    assert metrics.entropy == pytest.approx(
        float(metrics.spectrum.sum()) - metrics.total_correlation
    )
    assert float(metrics.spectrum_se.max()) < 1e-6
    # the principal spectrum: log singular values of A, summing to H
    singular = torch.linalg.svdvals(matrix)
    torch.testing.assert_close(
        metrics.principal_spectrum, GAUSSIAN_ENTROPY + singular.log(), atol=1e-5, rtol=0
    )
    assert float(metrics.principal_spectrum.sum()) == pytest.approx(metrics.entropy, abs=1e-5)
    # MPMI_ij = -log |sin angle(a_i, a_j)|
    cosine = torch.dot(matrix[:, 0], matrix[:, 1]) / (norms[0] * norms[1])
    assert float(metrics.mpmi[0, 1]) == pytest.approx(-0.5 * math.log(1 - cosine**2), abs=1e-5)
    assert torch.isnan(metrics.mpmi.diagonal()).all()
    torch.testing.assert_close(metrics.mpmi, metrics.mpmi.T, equal_nan=True)


def test_total_correlation_nonnegative_and_zero_for_orthogonal_columns():
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(3, 32), nn.Tanh(), nn.Linear(32, 3)).double()
    z = torch.randn(400, 3, dtype=torch.float64)
    jacobian = decoder_jacobian(lambda v: mlp(v) + v, z)
    assert float(per_sample_total_correlation(jacobian).min()) >= -1e-12  # Hadamard
    assert jacobian_metrics(jacobian).total_correlation > 1e-3
    # Orthogonal columns: a rotation of a diagonal non-linear map, and a scaled rotation.
    rotation = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64))[0]
    for decoder in (
        lambda v: torch.sinh(v * torch.tensor([0.5, 1.0, 2.0], dtype=v.dtype)) @ rotation.T,
        lambda v: 3.0 * v @ rotation.T,
    ):
        metrics = jacobian_metrics(decoder_jacobian(decoder, z))
        assert abs(metrics.total_correlation) < 1e-10
        if decoder(z[:1]).shape and metrics.spectrum_se.max() < 1e-12:  # constant Jacobian
            torch.testing.assert_close(metrics.principal_spectrum, metrics.sorted_spectrum)
        off_diagonal = metrics.mpmi[~torch.eye(3, dtype=torch.bool)]
        assert float(off_diagonal.abs().max()) < 1e-10


def test_permuting_latents_permutes_spectrum_and_mpmi():
    torch.manual_seed(1)
    mlp = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 4)).double()

    def decoder(v):
        return v + mlp(v)

    permutation = torch.tensor([2, 0, 3, 1])
    z = torch.randn(300, 4, dtype=torch.float64)
    # the permuted model g'(z') = g(z' P^T) at z' = z[:, P] decodes the same points
    inverse = torch.argsort(permutation)
    original = jacobian_metrics(decoder_jacobian(decoder, z), torch.full((4,), 1.0))
    permuted = jacobian_metrics(
        decoder_jacobian(lambda v: decoder(v[:, inverse]), z[:, permutation]),
        torch.full((4,), 1.0),
    )
    torch.testing.assert_close(permuted.spectrum, original.spectrum[permutation])
    torch.testing.assert_close(
        permuted.mpmi, original.mpmi[permutation][:, permutation], equal_nan=True
    )
    assert permuted.total_correlation == pytest.approx(original.total_correlation)
    assert permuted.entropy == pytest.approx(original.entropy)


def test_jacobian_modes_agree_and_handle_non_square_decoders():
    torch.manual_seed(2)
    mlp = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 5)).double()
    z = torch.randn(50, 2, dtype=torch.float64)
    reference = torch.func.vmap(torch.func.jacrev(lambda v: mlp(v[None])[0]))(z)
    for mode in ("auto", "fwd", "rev", "autograd"):
        torch.testing.assert_close(decoder_jacobian(mlp, z, mode=mode, chunk_size=16), reference)
    with pytest.raises(ValueError, match="mode must be one of"):
        decoder_jacobian(mlp, z, mode="bad")
    with pytest.raises(ValueError, match=r"shape \(n, d\)"):
        decoder_jacobian(mlp, z[0])


def test_index_sets_partition_identity_and_output_scale():
    torch.manual_seed(3)
    mlp = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 3)).double()

    def decoder(v):
        return v + 0.5 * mlp(v)

    z = torch.randn(500, 3, dtype=torch.float64)
    jacobian = decoder_jacobian(decoder, z)
    h = torch.full((3,), GAUSSIAN_ENTROPY, dtype=torch.float64)
    metrics = jacobian_metrics(jacobian, h)
    # H(q) = H(q_S) + H(q_T) - I(S; T) for the partition S = {0}, T = {1, 2}
    parts = manifold_entropy(jacobian, [0], h) + manifold_entropy(jacobian, [1, 2], h)
    mutual = manifold_mutual_information(jacobian, [0], [1, 2])
    assert metrics.entropy == pytest.approx(parts - mutual)
    assert mutual >= 0
    # pairwise MMI is MPMI
    assert manifold_mutual_information(jacobian, [0], [1]) == pytest.approx(
        float(metrics.mpmi[0, 1])
    )
    with pytest.raises(ValueError, match="disjoint"):
        manifold_mutual_information(jacobian, [0, 1], [1])
    # output_scale: entropies of the standardised decoder in data units
    scale = torch.tensor([2.0, 0.5, 3.0], dtype=torch.float64)
    scaled = entropic_metrics(decoder, z=z, output_scale=scale, prior_entropies=h)
    direct = entropic_metrics(lambda v: decoder(v) * scale, z=z, prior_entropies=h)
    torch.testing.assert_close(scaled.spectrum, direct.spectrum)
    assert scaled.entropy == pytest.approx(metrics.entropy + float(scale.log().sum()))


def test_mcpmi_matches_latents_of_two_models():
    torch.manual_seed(4)
    scales = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)

    def first(v):
        return torch.sinh(v * scales)

    permutation = torch.tensor([1, 2, 0])  # model 2's latent j is model 1's latent P[j]
    z = torch.randn(200, 3, dtype=torch.float64)
    x_z2 = z[:, permutation]  # model 2's encoding of the same x

    def second(v):
        return first(v[:, torch.argsort(permutation)])

    values = mcpmi(decoder_jacobian(first, z), decoder_jacobian(second, x_z2))
    assert values.shape == (3, 3)
    # matching latents are parallel (huge MCPMI), the others orthogonal (0)
    assert values.argmax(0).tolist() == permutation.tolist()
    assert float(values[permutation, torch.arange(3)].min()) > 50
    with pytest.raises(ValueError, match="same n points"):
        mcpmi(decoder_jacobian(first, z), decoder_jacobian(first, z[:10]))


def test_bad_inputs_fail_fast():
    with pytest.raises(ValueError, match="num_samples"):
        entropic_metrics(lambda v: v, _normal(2), num_samples=1)
    with pytest.raises(ValueError, match="latent distribution"):
        entropic_metrics(lambda v: v)
    with pytest.raises(ValueError, match="decoder must map"):
        entropic_metrics(lambda v: v.sum(), _normal(2), num_samples=4)
    with pytest.raises(ValueError, match="output_scale"):
        entropic_metrics(lambda v: v, _normal(2), num_samples=4, output_scale=torch.ones(3))
