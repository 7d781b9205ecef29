"""Unsupervised pretraining of summary (embedding) networks on the simulations' x.

The protocol: an embedding net that defines ``pretrain(x)`` gets it called once, on the
training simulations' x as the net itself sees them, when an estimator builds its network and
before that network trains. sbiplug's ``npe`` (and every estimator built with
``sbiplug.density_estimator("npe", ...)``), ``cmpe`` and ``npe_mmd`` do so through
:func:`pretrain_embedding_net`. A net placed behind other layers (sbi's z-scoring in an
``nn.Sequential``) is given x transformed by the layers in front of it.

Rebuilding a saved estimator builds its network on a few example rows only and then loads the
trained weights; :func:`skip_pretraining` turns the call off for that.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

__all__ = ["PRETRAIN_METHOD", "pretrain_embedding_net", "skip_pretraining"]

#: The method name of the protocol: ``embedding_net.pretrain(x)`` with x ``(n, *x_shape)``.
PRETRAIN_METHOD = "pretrain"

_SKIP: ContextVar[bool] = ContextVar("sbiplug_skip_pretraining", default=False)


@contextmanager
def skip_pretraining() -> Iterator[None]:
    """Within this block :func:`pretrain_embedding_net` does nothing (network rebuilds)."""
    token = _SKIP.set(True)
    try:
        yield
    finally:
        _SKIP.reset(token)


def pretrain_embedding_net(embedding_net: Any, x: Any) -> bool:
    """Call ``pretrain`` of ``embedding_net`` (or of the first layer of an ``nn.Sequential``
    chain that has one) on the simulations ``x`` as that layer sees them.

    Arguments:
        embedding_net: The estimator's embedding net (a module, ``None`` or anything else).
        x: The training simulations, shape ``(n, *x_shape)``.

    Returns:
        Whether a ``pretrain`` method was called.
    """
    import torch
    from torch import nn

    if embedding_net is None or _SKIP.get():
        return False
    method = getattr(embedding_net, PRETRAIN_METHOD, None)
    if callable(method):
        method(x)
        return True
    if isinstance(embedding_net, nn.Sequential):
        seen = x
        for layer in embedding_net:
            inner = getattr(layer, PRETRAIN_METHOD, None)
            if callable(inner):
                inner(seen)
                return True
            with torch.no_grad():
                seen = layer(seen)
    return False
