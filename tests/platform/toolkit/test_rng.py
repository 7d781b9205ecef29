"""RNG helpers leave the caller's global torch and NumPy state as they found it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sbiplug.toolkit import SeedLike, as_generator, derive_seed, ensure_seed, seeded


def _global_state() -> tuple[torch.Tensor, tuple]:
    return torch.random.get_rng_state(), np.random.get_state()


def _assert_state(expected: tuple[torch.Tensor, tuple]) -> None:
    torch_state, numpy_state = expected
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    now = np.random.get_state()
    assert now[0] == numpy_state[0] and np.array_equal(now[1], numpy_state[1])
    assert now[2:] == numpy_state[2:]


def test_seeded_block_is_reproducible_and_restores_both_global_generators():
    torch.manual_seed(123)
    np.random.seed(123)
    before = _global_state()
    with seeded(7):
        first = torch.rand(3), np.random.rand(3)
    _assert_state(before)
    with seeded(7):
        second = torch.rand(3), np.random.rand(3)
    assert torch.equal(first[0], second[0]) and np.array_equal(first[1], second[1])
    _assert_state(before)


def test_seeded_restores_the_state_when_the_block_raises():
    before = _global_state()
    with pytest.raises(RuntimeError), seeded(1):
        torch.rand(5)
        np.random.rand(5)
        raise RuntimeError("boom")
    _assert_state(before)


def test_seeded_none_forks_without_reseeding():
    torch.manual_seed(5)
    expected = torch.rand(2)
    torch.manual_seed(5)
    with seeded(None):
        inside = torch.rand(2)
    assert torch.equal(inside, expected)
    assert torch.equal(torch.rand(2), expected)  # the caller's stream did not move


def test_as_generator_and_ensure_seed():
    generator = np.random.default_rng(0)
    assert as_generator(generator) is generator
    assert as_generator(3).random() == np.random.default_rng(3).random()
    before_numpy = np.random.get_state()[1].copy()
    torch.manual_seed(0)
    first = as_generator(None).random()
    torch.manual_seed(0)
    assert as_generator(None).random() == first  # torch.manual_seed stays in charge
    assert np.array_equal(np.random.get_state()[1], before_numpy)  # NumPy's global untouched
    assert ensure_seed(11) == 11
    torch.manual_seed(0)
    drawn = ensure_seed(None)
    torch.manual_seed(0)
    assert ensure_seed(None) == drawn and isinstance(drawn, int)
    seed: SeedLike = np.random.SeedSequence(4)
    assert as_generator(seed).random() == np.random.default_rng(np.random.SeedSequence(4)).random()


def test_derive_seed_is_a_pure_function_of_seed_and_purpose():
    before = _global_state()
    seeds = {derive_seed(0, p) for p in ("prior", "simulate", "posterior")}
    assert len(seeds) == 3 and all(0 <= s < 2**32 for s in seeds)
    assert derive_seed(0, "prior") == derive_seed(0, "prior") != derive_seed(1, "prior")
    _assert_state(before)


def test_simulator_sample_prior_with_a_seed_leaves_global_state_alone():
    import sbiplug

    simulator = sbiplug.make_simulator("two_moons")
    before = _global_state()
    draws = simulator.sample_prior(4, seed=3)
    _assert_state(before)
    assert torch.equal(draws, simulator.sample_prior(4, seed=3))
