"""Z-scoring: ``(v - shift) / scale`` per coordinate, with a safe floor for constant ones.

A coordinate whose spread is below :data:`SCALE_FLOOR` (constant, or constant up to round-off)
gets ``scale = 1``: dividing by its tiny or zero spread would blow round-off up to unit size, or
produce inf and NaN. Its standardised value is then just ``v - shift``, 0 on the data it was
fitted to. Statistics are computed in float64 and over finite rows only.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["SCALE_FLOOR", "Standardize", "z_score_moments"]

SCALE_FLOOR = 1e-8
"""Spreads at or below this count as zero: such coordinates are shifted, not scaled."""


def z_score_moments(data: Tensor, *, floor: float = SCALE_FLOOR) -> tuple[Tensor, Tensor]:
    """Per-coordinate mean and floored standard deviation of ``data``.

    Arguments:
        data: Rows of shape ``(n, *event_shape)``; rows with a NaN or inf are left out.
        floor: A standard deviation ``<= floor`` (or undefined) becomes 1.

    Returns:
        ``shift`` and ``scale``, each of shape ``event_shape``, float32. Fewer than two finite
        rows give ``shift = 0`` and ``scale = 1`` (the identity).
    """
    event_shape = data.shape[1:]
    finite = torch.isfinite(data.reshape(len(data), -1)).all(dim=1)
    rows = data[finite].double()
    if len(rows) < 2:
        return torch.zeros(event_shape), torch.ones(event_shape)
    shift, scale = rows.mean(dim=0), rows.std(dim=0)
    scale = torch.where(torch.isfinite(scale) & (scale > floor), scale, torch.ones_like(scale))
    return shift.float(), scale.float()


class Standardize(nn.Module):
    """Elementwise z-scoring ``z = (v - shift) / scale``; ``shift`` and ``scale`` are buffers.

    Buffers (not parameters): the layer is fixed, saved in the ``state_dict`` and moves with
    the module, but is never trained and contributes no gradient feature.

    Arguments:
        shift: Per-coordinate shift, shape ``event_shape`` (a floating dtype is kept, others
            become float32).
        scale: Per-coordinate scale, shape ``event_shape``, positive.
    """

    shift: Tensor
    scale: Tensor

    def __init__(self, shift: Tensor, scale: Tensor) -> None:
        super().__init__()
        shift, scale = _as_floating(shift), _as_floating(scale)
        if shift.shape != scale.shape:
            raise ValueError(
                f"Standardize: shift and scale must have one shape, got {tuple(shift.shape)} "
                f"and {tuple(scale.shape)}"
            )
        if not bool((scale > 0).all()):
            raise ValueError("Standardize: scale must be positive")
        self.register_buffer("shift", shift)
        self.register_buffer("scale", scale)

    @classmethod
    def from_data(
        cls, data: Tensor, *, enabled: bool = True, floor: float = SCALE_FLOOR
    ) -> Standardize:
        """The z-scoring of ``data`` (shape ``(n, *event_shape)``), see :func:`z_score_moments`.

        ``enabled=False`` gives the identity of the same event shape (so that a network's
        ``state_dict`` has the same keys either way).
        """
        if not enabled:
            return cls.identity(data.shape[1:])
        return cls(*z_score_moments(data, floor=floor))

    @classmethod
    def identity(cls, event_shape: tuple[int, ...] | torch.Size) -> Standardize:
        """The identity z-scoring of ``event_shape`` (shift 0, scale 1)."""
        return cls(torch.zeros(event_shape), torch.ones(event_shape))

    def forward(self, value: Tensor) -> Tensor:
        """``(value - shift) / scale`` for ``value`` of shape ``(*batch, *event_shape)``."""
        return (value - self.shift) / self.scale

    def inverse(self, value: Tensor) -> Tensor:
        """``value * scale + shift``: standardised values back to the original units."""
        return value * self.scale + self.shift

    def log_abs_det(self) -> Tensor:
        """``sum log scale``: log|det| of :meth:`inverse`, so ``log p(v) = log p(z) - this``."""
        return self.scale.log().sum()

    def extra_repr(self) -> str:
        return f"event_shape={tuple(self.shift.shape)}"


def _as_floating(value: Tensor) -> Tensor:
    value = torch.as_tensor(value).detach().clone()
    return value if value.is_floating_point() else value.float()
