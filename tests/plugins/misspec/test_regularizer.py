"""Kernels, the biased MMD² and the SummaryMMD penalty."""

from __future__ import annotations

import pytest
import torch

from sbiplug_misspec.regularizer import (
    KERNEL_SCALES,
    SummaryMMD,
    gaussian_kernel,
    imq_kernel,
    mmd_squared,
)


def test_kernel_mixtures_match_their_formulas_and_the_19_scales():
    assert len(KERNEL_SCALES) == 19
    x, y = torch.randn(5, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    distance = ((x[:, None] - y[None]) ** 2).sum(-1)
    scales = torch.tensor(KERNEL_SCALES, dtype=torch.float64)
    imq = (scales / (distance[..., None] + scales)).sum(-1)
    gauss = torch.exp(-distance[..., None] / (2 * scales)).sum(-1)
    torch.testing.assert_close(imq_kernel(x, y), imq)
    torch.testing.assert_close(gaussian_kernel(x, y), gauss)
    # k(x, x) = 19 for both mixtures.
    torch.testing.assert_close(imq_kernel(x, x).diagonal(), torch.full((5,), 19.0).double())
    torch.testing.assert_close(gaussian_kernel(x, x).diagonal(), torch.full((5,), 19.0).double())


def test_biased_mmd_is_the_v_statistic():
    x, y = torch.randn(6, 2, dtype=torch.float64), torch.randn(3, 2, dtype=torch.float64) + 1
    expected = imq_kernel(x, x).mean() + imq_kernel(y, y).mean() - 2 * imq_kernel(x, y).mean()
    torch.testing.assert_close(mmd_squared(x, y), expected)
    assert float(mmd_squared(x, x)) == pytest.approx(0.0, abs=1e-10)
    # Batched over leading dimensions.
    batch = mmd_squared(torch.stack([x[:3], x[3:]]), y)
    torch.testing.assert_close(batch[1], mmd_squared(x[3:], y))


def test_summary_mmd_is_small_for_normal_summaries_and_large_for_shifted_ones():
    torch.manual_seed(0)
    penalty = SummaryMMD()
    normal = torch.stack([penalty(torch.randn(256, 4)) for _ in range(20)])
    shifted = torch.stack([penalty(torch.randn(256, 4) * 0.3 + 1.5) for _ in range(20)])
    assert shifted.min() > 10 * normal.max()


def test_summary_mmd_weight_scales_the_penalty_and_gradients_flow():
    summaries = (torch.randn(128, 3) + 1).requires_grad_()
    torch.manual_seed(1)
    single = SummaryMMD(weight=1.0)(summaries)
    torch.manual_seed(1)
    double = SummaryMMD(weight=2.0, kernel="gaussian")(summaries)
    torch.manual_seed(1)
    gaussian = SummaryMMD(weight=1.0, kernel="gaussian")(summaries)
    torch.testing.assert_close(double, 2 * gaussian)
    single.backward()
    assert summaries.grad is not None and summaries.grad.abs().sum() > 0
    assert float(SummaryMMD(weight=0.0)(summaries)) == 0.0


def test_summary_mmd_rejects_bad_input():
    with pytest.raises(ValueError, match="kernel"):
        SummaryMMD(kernel="rbf")
    with pytest.raises(ValueError, match="weight"):
        SummaryMMD(weight=-1.0)
    with pytest.raises(ValueError, match=r"\(batch, summary_dim\)"):
        SummaryMMD()(torch.randn(4, 2, 3))


def test_summary_mmd_target_scale_sets_the_normal_it_pulls_towards():
    torch.manual_seed(2)
    scale = (1.0, 1.0, 0.5, 0.5)
    narrow = torch.randn(512, 4) * torch.tensor(scale)
    penalty_scaled = SummaryMMD(target_scale=scale)
    penalty_standard = SummaryMMD()
    scaled = torch.stack([penalty_scaled(narrow) for _ in range(10)])
    standard = torch.stack([penalty_standard(narrow) for _ in range(10)])
    # Summaries drawn from the stated target sit at the sampling floor of the other one.
    assert scaled.max() < standard.min()
    assert SummaryMMD(target_scale=2.0).target_scale == 2.0
    with pytest.raises(ValueError, match="4 dimensions"):
        SummaryMMD(target_scale=(1.0, 0.5))(narrow)
    with pytest.raises(ValueError, match="target_scale"):
        SummaryMMD(target_scale=(1.0, 0.0))
    with pytest.raises(ValueError, match="target_scale"):
        SummaryMMD(target_scale=float("inf"))
