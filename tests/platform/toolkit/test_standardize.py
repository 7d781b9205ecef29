"""Standardize: z-scoring with a safe floor, finite on constant coordinates, invertible."""

from __future__ import annotations

import pytest
import torch

from sbiplug.toolkit import SCALE_FLOOR, Standardize, z_score_moments


def test_constant_coordinate_gives_finite_output_and_unit_scale():
    data = torch.randn(100, 3, generator=torch.Generator().manual_seed(0))
    data[:, 1] = 4.2  # a constant coordinate: standard deviation 0
    standardize = Standardize.from_data(data)
    z = standardize(data)
    assert torch.isfinite(z).all()
    assert standardize.scale[1] == 1.0 and standardize.shift[1] == pytest.approx(4.2)
    assert torch.allclose(z[:, 1], torch.zeros(100), atol=1e-6)
    torch.testing.assert_close(z[:, [0, 2]].mean(0), torch.zeros(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(z[:, [0, 2]].std(0), torch.ones(2), atol=1e-5, rtol=0)
    assert torch.isfinite(standardize.log_abs_det())


def test_spread_at_the_floor_counts_as_constant():
    data = torch.zeros(10, 2, dtype=torch.float64)
    data[:, 0] = torch.linspace(0, SCALE_FLOOR / 10, 10)
    data[:, 1] = torch.linspace(0, 1, 10)
    _, scale = z_score_moments(data)
    assert scale[0] == 1.0 and scale[1] == pytest.approx(float(data[:, 1].std()), rel=1e-6)


def test_round_trip_and_log_det_for_an_event_shape():
    data = 3.0 + 2.0 * torch.randn(50, 2, 3, generator=torch.Generator().manual_seed(1))
    standardize = Standardize.from_data(data)
    assert standardize.shift.shape == (2, 3) == standardize.scale.shape
    torch.testing.assert_close(standardize.inverse(standardize(data)), data)
    assert standardize.log_abs_det() == pytest.approx(float(standardize.scale.log().sum()))


def test_non_finite_rows_are_ignored_and_too_few_rows_give_the_identity():
    data = torch.tensor([[0.0, 1.0], [2.0, 3.0], [float("nan"), 100.0]])
    shift, scale = z_score_moments(data)
    torch.testing.assert_close(shift, torch.tensor([1.0, 2.0]))
    shift, scale = z_score_moments(data[:1])
    assert torch.equal(shift, torch.zeros(2)) and torch.equal(scale, torch.ones(2))


def test_disabled_and_identity_keep_the_state_dict_keys():
    data = torch.randn(20, 4)
    disabled = Standardize.from_data(data, enabled=False)
    assert torch.equal(disabled(data), data)
    assert (
        set(disabled.state_dict())
        == {"shift", "scale"}
        == set(Standardize.identity((4,)).state_dict())
    )
    loaded = Standardize.identity((4,))
    loaded.load_state_dict(Standardize.from_data(data).state_dict())
    torch.testing.assert_close(loaded(data), Standardize.from_data(data)(data))


def test_buffers_are_not_parameters_and_bad_scales_are_rejected():
    standardize = Standardize(torch.zeros(2), torch.ones(2))
    assert list(standardize.parameters()) == []
    assert standardize.double().shift.dtype == torch.float64
    with pytest.raises(ValueError, match="positive"):
        Standardize(torch.zeros(2), torch.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match="one shape"):
        Standardize(torch.zeros(2), torch.ones(3))
