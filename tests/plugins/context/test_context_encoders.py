"""Set encoders: permutation invariance, masking (a set equals itself padded), clear errors."""

from __future__ import annotations

import math

import pytest
import torch

import sbiplug
from sbiplug_context import SetShapeError, pad_sets

ENCODERS = ("set_deepsets", "set_transformer")


def _encoder(name: str, **options):
    torch.manual_seed(0)
    options = {"element_dim": 3, "max_trials": 12, "min_trials": 2, **options}
    return sbiplug.make_embedding_net(name, **options).eval()


@pytest.mark.parametrize("name", ENCODERS)
def test_permutation_invariance_and_padding(name):
    encoder = _encoder(name)
    torch.manual_seed(1)
    s = torch.randn(5, 3)
    batch = pad_sets([s, torch.randn(12, 3), torch.randn(2, 3)], 12)
    other = pad_sets([s[torch.randperm(5)], torch.randn(7, 3)], 12)
    scattered = torch.full((1, 12, 3), float("nan"))
    scattered[0, [0, 3, 4, 8, 11]] = s  # padding between the elements, not only trailing
    reference = encoder(batch)[0]
    assert encoder(batch).shape == (3, 16)
    # float32 sums in another order: equal to rounding
    assert torch.allclose(encoder(other)[0], reference, atol=1e-5)
    assert torch.allclose(encoder(scattered)[0], reference, atol=1e-5)
    # the summary depends on the set: a different set of the same size gives another one
    assert (encoder(pad_sets([s + 1.0], 12))[0] - reference).abs().max() > 1e-3


@pytest.mark.parametrize("name", ENCODERS)
def test_set_size_is_a_feature(name):
    encoder = _encoder(name)
    s = torch.randn(4, 3)
    repeated = torch.cat([s, s])  # the same empirical distribution, twice the trials
    a, b = encoder(pad_sets([s, repeated], 12))
    assert (a - b).abs().max() > 1e-4


@pytest.mark.parametrize("name", ENCODERS)
def test_linear_path_carries_the_set_mean_and_size(name):
    encoder = _encoder(name)
    with torch.no_grad():  # silence rho: the summary is the linear path alone
        encoder.rho[-1].weight.zero_()
        encoder.rho[-1].bias.zero_()
    torch.manual_seed(2)
    sets = [torch.randn(3, 3), torch.randn(9, 3) + 2.0]
    means = torch.stack([s.mean(0) for s in sets])
    log_sizes = torch.log(torch.tensor([[3.0], [9.0]])) / torch.log(torch.tensor(13.0))
    expected = encoder.linear_path(torch.cat([means, log_sizes], dim=-1))
    assert torch.allclose(encoder(pad_sets(sets, 12)), expected, atol=1e-5)


@pytest.mark.parametrize("name", ENCODERS)
def test_clear_errors(name):
    encoder = _encoder(name)
    with pytest.raises(SetShapeError, match=r"expected padded sets of shape \(batch, 12, 3\)"):
        encoder(torch.randn(2, 12, 4))  # wrong element dimension
    with pytest.raises(SetShapeError, match="is empty"):
        encoder(torch.full((1, 12, 3), float("nan")))
    with pytest.raises(SetShapeError, match="has 1 trials; this model covers 2 to 12"):
        encoder(pad_sets([torch.randn(1, 3)], 12))
    partial = pad_sets([torch.randn(4, 3)], 12)
    partial[0, 1, 0] = float("nan")
    with pytest.raises(SetShapeError, match="partly NaN"):
        encoder(partial)
    with pytest.raises(SetShapeError, match="has 13 trials"):
        pad_sets([torch.randn(13, 3)], 12)
    with pytest.raises(ValueError, match="min_trials"):
        sbiplug.make_embedding_net(name, element_dim=3, max_trials=4, min_trials=5)


def test_standardises_on_first_training_batch_and_saves_it():
    encoder = _encoder("set_deepsets").train()
    x = pad_sets([torch.randn(6, 3) * 5 + 10 for _ in range(8)], 12)
    encoder(x[:1])  # sbi's one-set probe does not fit the standardisation
    assert not bool(encoder.fitted)
    encoder(x)
    assert bool(encoder.fitted) and torch.allclose(encoder.loc, torch.full((3,), 10.0), atol=2)
    rebuilt = _encoder("set_deepsets")
    rebuilt.load_state_dict(encoder.state_dict())  # buffers travel with the weights
    assert torch.equal(rebuilt.loc, encoder.loc) and bool(rebuilt.fitted)


@pytest.mark.parametrize("name", ENCODERS)
def test_training_subsamples_trials_and_evaluation_does_not(name):
    encoder = _encoder(name).train()
    torch.manual_seed(3)
    x = pad_sets([torch.randn(k, 3) for k in (2, 6, 12) * 400], 12)
    present = torch.isfinite(x[..., 0])
    kept = encoder._random_subsets(present)
    sizes, full = kept.sum(dim=1), present.sum(dim=1)
    assert not (kept & ~present).any()  # a subset of the simulated trials
    assert bool((sizes >= 2).all()) and bool((sizes <= full).all())
    # a set of 12 is cut with chance 0.5 (1 - P(a log-uniform draw on [2, 12] is 12));
    # 400 sets: binomial sd 0.025, bound 4 sd
    cut = float((sizes[full == 12] < 12).double().mean())
    assert abs(cut - 0.5 * (1 - math.log(13 / 12) / math.log(13 / 2))) < 0.1
    assert encoder(x).shape == (len(x), 16)
    encoder.eval()
    assert torch.equal(encoder(x[:5]), encoder(x[:5]))
    with pytest.raises(ValueError, match=r"subsample_trials must be a probability in \[0, 1\)"):
        _encoder(name, subsample_trials=1.0)
    with pytest.raises(ValueError, match="subsample_trials must be a finite number"):
        _encoder(name, subsample_trials="half")
