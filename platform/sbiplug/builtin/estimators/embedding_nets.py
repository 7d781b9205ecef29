"""sbi's summary (embedding) networks, built from JSON options so a saved estimator rebuilds them.

``fc``: sbi's ``FCEmbedding`` (an MLP for vector data); ``cnn``: sbi's ``CNNEmbedding`` (1-D or
2-D data, ``input_shape`` a list); ``permutation_invariant``: sbi's DeepSet
``PermutationInvariantEmbedding`` over i.i.d. trials, its trial network itself given as
``{"name": ..., "options": ...}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

__all__ = ["make_cnn", "make_fc", "make_permutation_invariant"]


def make_fc(
    input_dim: int, output_dim: int = 20, num_layers: int = 2, num_hiddens: int = 50
) -> nn.Module:
    """sbi's ``FCEmbedding``: x ``(B, input_dim)`` -> ``(B, output_dim)``."""
    from sbi.neural_nets.embedding_nets import FCEmbedding

    return FCEmbedding(
        input_dim=input_dim, output_dim=output_dim, num_layers=num_layers, num_hiddens=num_hiddens
    )


def make_cnn(
    input_shape: Sequence[int],
    in_channels: int = 1,
    num_conv_layers: int = 2,
    num_linear_layers: int = 2,
    num_linear_units: int = 50,
    output_dim: int = 20,
    kernel_size: int = 5,
    pool_kernel_size: int = 2,
) -> nn.Module:
    """sbi's ``CNNEmbedding``: x ``(B, *input_shape)`` -> ``(B, output_dim)``."""
    from sbi.neural_nets.embedding_nets import CNNEmbedding

    return CNNEmbedding(
        input_shape=tuple(input_shape),
        in_channels=in_channels,
        num_conv_layers=num_conv_layers,
        num_linear_layers=num_linear_layers,
        num_linear_units=num_linear_units,
        output_dim=output_dim,
        kernel_size=kernel_size,
        pool_kernel_size=pool_kernel_size,
    )


def make_permutation_invariant(
    trial_net: Mapping[str, Any],
    trial_net_output_dim: int,
    aggregation_fn: str = "sum",
    num_hiddens: int = 100,
    num_layers: int = 2,
    output_dim: int = 20,
) -> nn.Module:
    """sbi's ``PermutationInvariantEmbedding``: x ``(B, num_trials, d)`` -> ``(B, output_dim)``.

    Arguments:
        trial_net: The per-trial network as ``{"name": ..., "options": ...}``.
    """
    from sbi.neural_nets.embedding_nets import PermutationInvariantEmbedding

    from sbiplug.embedding_nets import make_embedding_net

    if not isinstance(trial_net, Mapping) or "name" not in trial_net:
        raise ValueError(
            "embedding net 'permutation_invariant': trial_net must be "
            f"{{'name': ..., 'options': {{...}}}}, got {trial_net!r}"
        )
    return PermutationInvariantEmbedding(
        trial_net=make_embedding_net(trial_net["name"], **dict(trial_net.get("options", {}))),
        trial_net_output_dim=trial_net_output_dim,
        aggregation_fn=aggregation_fn,
        num_hiddens=num_hiddens,
        num_layers=num_layers,
        output_dim=output_dim,
    )
