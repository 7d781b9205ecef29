"""Reference-posterior argument checks for simulators."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sbiplug.toolkit import OptionError, as_observation, check_num_samples


def test_num_samples_must_be_a_non_negative_int():
    assert check_num_samples(np.int32(0), "sir") == 0
    for bad in (-1, 2.5, True):
        with pytest.raises(OptionError, match=r"simulator 'sir': num_samples must be"):
            check_num_samples(bad, "sir")


def test_one_observation_as_a_finite_array():
    array = as_observation(torch.ones(1, 2), (2,), "two_moons")
    assert array.dtype == np.float64 and array.shape == (2,)
    with pytest.raises(TypeError, match=r"two_moons.*torch\.Tensor"):
        as_observation([0.0, 0.0], (2,), "two_moons")
    with pytest.raises(OptionError, match=r"shape \(2,\)"):
        as_observation(torch.zeros(3), (2,), "two_moons")
    with pytest.raises(OptionError, match="finite"):
        as_observation(torch.tensor([0.0, float("inf")]), (2,), "two_moons")
