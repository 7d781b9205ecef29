"""Generic data-space features: the second block of the default misspecification test.

A summary network trained for the posterior keeps what the parameters explain and may discard
everything else; what a wrong model changes is often just that (the noise's tails, skew or
modes, outliers, dependence). So the default test also looks at features of the data
themselves, fixed and written for no particular simulator:

- **set-valued data** ``(n, d)`` (rows i.i.d. given θ): per coordinate, of the set standardised
  by its own mean and sd: the log sd, skewness, log kurtosis, log of the largest |z| and the
  lag-1 correlation along the set's order (dependence, drift); and the correlation between each
  pair of coordinates (up to 8 coordinates). None of them moves with a location parameter.
- **vectors and time series** ``(d,)``: the data vector itself (an x-space block, up to
  ``MAX_RAW_FEATURES`` entries); their noise's shape is the residual block's
  (:mod:`sbiplug_misspec.residuals`), which needs the trained posterior.

The test standardises the block with the reference set's median and interquartile range, so
the features need no training. Names (:attr:`names`) say what each one measures.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["MAX_RAW_FEATURES", "DataFeatures", "default_data_features"]

MAX_RAW_FEATURES = 1024
_MAX_PAIRS_DIM = 8
_EPS = 1e-12


class DataFeatures:
    """Fixed features of data sets, ``(batch, *observation_shape) -> (batch, F)`` float64.

    Arguments:
        observation_shape: ``(n, d)`` for sets, ``(d,)`` for vectors or time series.

    Attributes:
        names: One label per feature, e.g. ``"kurtosis[x_1]"``.
        kinds: What each feature measures: ``"scale"``, ``"skew"``, ``"tails"``,
            ``"dependence"`` or ``"value"``.
    """

    def __init__(self, observation_shape: Sequence[int]) -> None:
        self.observation_shape = tuple(int(s) for s in observation_shape)
        shape = self.observation_shape
        if len(shape) == 2:
            self.mode = "set"
            d = shape[1]
            per = [("log_sd", "scale"), ("skewness", "skew"), ("log_kurtosis", "tails"),
                   ("log_max_abs_z", "tails"), ("lag1_corr", "dependence")]  # fmt: skip
            self.names = [f"{label}[x_{j + 1}]" for label, _ in per for j in range(d)]
            self.kinds = [kind for _, kind in per for _ in range(d)]
            self.pairs = (
                [(i, j) for i in range(d) for j in range(i + 1, d)] if d <= _MAX_PAIRS_DIM else []
            )
            self.names += [f"corr[x_{i + 1}, x_{j + 1}]" for i, j in self.pairs]
            self.kinds += ["dependence"] * len(self.pairs)
        elif len(shape) == 1 and shape[0] <= MAX_RAW_FEATURES:
            self.mode = "raw"
            self.names = [f"x[{i}]" for i in range(shape[0])]
            self.kinds = ["value"] * shape[0]
        else:
            raise ValueError(
                f"no default data features for observations of shape {shape}: expected (n, d) "
                f"sets or vectors of at most {MAX_RAW_FEATURES} entries; pass data_features=None "
                "(summary space only) or a callable x -> features"
            )

    @property
    def num_features(self) -> int:
        return len(self.names)

    def __call__(self, x: Tensor) -> Tensor:
        """Features, shape ``(batch, F)``, of data of shape ``(batch, *observation_shape)``."""
        x = torch.as_tensor(x).to(torch.float64)
        if self.mode == "raw":
            return x.reshape(len(x), -1)
        centred = x - x.mean(dim=1, keepdim=True)
        variance = centred.square().mean(dim=1)
        sd = variance.add(_EPS).sqrt()
        z = centred / sd[:, None, :]
        skewness = z.pow(3).mean(dim=1)
        log_kurtosis = z.pow(4).mean(dim=1).add(_EPS).log()
        log_max = z.abs().amax(dim=1).add(_EPS).log()
        lag1 = (z[:, 1:] * z[:, :-1]).mean(dim=1) if x.shape[1] > 1 else torch.zeros_like(sd)
        parts = [sd.log(), skewness, log_kurtosis, log_max, lag1]
        if self.pairs:
            first, second = (torch.tensor(index) for index in zip(*self.pairs))
            parts.append((z[:, :, first] * z[:, :, second]).mean(dim=1))
        return torch.cat(parts, dim=-1)


def default_data_features(observation_shape: Sequence[int]) -> DataFeatures:
    """The data block of the default test for this observation shape (see the module docstring)."""
    return DataFeatures(observation_shape)
