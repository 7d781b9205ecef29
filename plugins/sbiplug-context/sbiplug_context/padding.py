"""Variable-size sets as NaN-padded tensors of a fixed width, and the checks on them.

A batch of sets with up to ``max_trials`` elements of dimension ``d`` is one tensor of shape
``(B, max_trials, d)``; a set with ``k < max_trials`` elements fills ``k`` rows and the other rows
are all NaN (trailing by :func:`pad_sets`, anywhere for the encoders). This is sbi's own
convention for missing trials (``PermutationInvariantEmbedding``), so padded data can go
through sbi unchanged once sbi is told not to drop or z-score NaN rows
(``exclude_invalid_x=False``; the encoders standardise their input themselves). A row with
some but not all entries NaN is malformed and refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

__all__ = ["SetShapeError", "check_sets", "pad_sets", "set_mask", "set_sizes"]


class SetShapeError(ValueError):
    """Set-valued data of the wrong shape, an empty set, or a size outside the allowed range."""


def _as_set(value: Any, index: int, element_dim: int | None) -> Tensor:
    try:
        item = torch.as_tensor(value, dtype=torch.float32)
    except (TypeError, ValueError, RuntimeError) as error:
        raise SetShapeError(f"set {index} must be an array of numbers: {error}") from None
    if item.ndim == 1 and element_dim is not None and element_dim > 0:
        if len(item) % element_dim:
            raise SetShapeError(
                f"set {index}: a flat row of {len(item)} numbers is not a whole number of "
                f"elements of dimension {element_dim}"
            )
        item = item.reshape(-1, element_dim)
    if item.ndim != 2:
        raise SetShapeError(
            f"set {index} must have shape (num_trials, element_dim), got {tuple(item.shape)}"
        )
    return item


def pad_sets(
    sets: Sequence[Any] | Tensor,
    max_trials: int,
    *,
    element_dim: int | None = None,
    min_trials: int = 1,
) -> Tensor:
    """Stack sets of different sizes into one NaN-padded tensor.

    Arguments:
        sets: A sequence of arrays ``(k_i, d)`` (or flat rows of ``k_i * d`` numbers when
            ``element_dim`` is given), or one tensor ``(B, k, d)``.
        max_trials: The width of the result (the largest allowed set).
        element_dim: The element dimension d every set must have (inferred when ``None``).
        min_trials: The smallest allowed set.

    Returns:
        A tensor ``(B, max_trials, d)``; rows past each set's size are NaN.
    """
    if isinstance(sets, Tensor) and sets.ndim == 3:
        sets = list(sets)
    if isinstance(sets, Tensor) and sets.ndim == 2 and element_dim is not None:
        sets = [sets]
    items = [_as_set(value, i, element_dim) for i, value in enumerate(sets)]
    if not items:
        raise SetShapeError("no sets were given")
    dims = {item.shape[1] for item in items}
    expected = element_dim if element_dim is not None else items[0].shape[1]
    if dims != {expected}:
        raise SetShapeError(
            f"every set element must have dimension {expected}, got dimensions {sorted(dims)}"
        )
    out = torch.full((len(items), max_trials, expected), float("nan"))
    for i, item in enumerate(items):
        # a set given already padded keeps only its present rows
        item = item[~torch.isnan(item).all(dim=-1)]
        _check_size(len(item), min_trials, max_trials, f"set {i}")
        out[i, : len(item)] = item
    check_sets(out, expected, min_trials=min_trials, max_trials=max_trials)
    return out


def set_mask(x: Tensor) -> Tensor:
    """Which rows of ``x`` ``(B, n, d)`` are set elements (not padding): ``(B, n)`` bools."""
    return ~torch.isnan(x).all(dim=-1)


def set_sizes(x: Tensor) -> Tensor:
    """The number of elements of each set in ``x`` ``(B, n, d)``: ``(B,)`` integers."""
    return set_mask(x).sum(dim=-1)


def _check_size(size: int, min_trials: int, max_trials: int, what: str) -> None:
    if size == 0:
        raise SetShapeError(f"{what} is empty: a set needs at least {min_trials} trial(s)")
    if not min_trials <= size <= max_trials:
        raise SetShapeError(
            f"{what} has {size} trials; this model covers {min_trials} to {max_trials} trials "
            "(simulate and train with a wider trial range to use it here)"
        )


def check_sets(
    x: Tensor,
    element_dim: int,
    *,
    min_trials: int = 1,
    max_trials: int | None = None,
    owner: str = "sets",
) -> Tensor:
    """Refuse a batch of padded sets with the wrong shape, malformed rows or a bad size.

    Arguments:
        x: Padded sets ``(B, n, element_dim)``.
        element_dim: The element dimension d.
        min_trials, max_trials: The allowed set sizes (``max_trials`` also the width ``n``).
        owner: Who checks, for the error message.

    Returns:
        The sizes ``(B,)``.
    """
    width = max_trials if max_trials is not None else (x.shape[1] if x.ndim == 3 else 0)
    if x.ndim != 3 or x.shape[2] != element_dim or x.shape[1] != width:
        raise SetShapeError(
            f"{owner}: expected padded sets of shape (batch, {width}, {element_dim}) "
            f"(max_trials, element_dim), got {tuple(x.shape)}"
        )
    missing = torch.isnan(x)
    partial = missing.any(dim=-1) & ~missing.all(dim=-1)
    if partial.any():
        b, k = (int(v) for v in partial.nonzero()[0])
        raise SetShapeError(
            f"{owner}: set {b}, trial {k} is partly NaN; a padded trial must be NaN in every "
            "entry and a present one finite"
        )
    if torch.isinf(x).any():
        raise SetShapeError(f"{owner}: sets must be finite (NaN only for padded trials)")
    sizes = (~missing.all(dim=-1)).sum(dim=-1)
    bad = (sizes < min_trials) | (sizes > width) | (sizes == 0)
    if bad.any():
        b = int(bad.nonzero()[0, 0])
        _check_size(int(sizes[b]), min_trials, width, f"{owner}: set {b}")
    return sizes
