"""A summary net that records what ``pretrain(x)`` saw, for testing the pretraining protocol.

An estimator that takes an embedding net should call its ``pretrain`` once, on the training x
as the net sees them (:func:`sbiplug.toolkit.pretrain_embedding_net`). Pass a
:class:`PretrainRecorder` as the embedding net, build the estimator's network, and inspect
``recorder.seen``. Import it from this module (``sbiplug.testing`` itself stays torch-free).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["PretrainRecorder"]


class PretrainRecorder(nn.Module):
    """A linear summary net ``(B, input_dim) -> (B, output_dim)`` that keeps every x handed to
    its ``pretrain`` in :attr:`seen`."""

    def __init__(self, input_dim: int, output_dim: int = 2) -> None:
        super().__init__()
        self.linear = nn.Linear(input_dim, output_dim)
        self.seen: list[Tensor] = []

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x)

    def pretrain(self, x: Tensor) -> None:
        self.seen.append(torch.as_tensor(x).clone())
