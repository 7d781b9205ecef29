"""Free-form network F(theta_t, t, c) of consistency model posterior estimation.

CMPE (Schmitt et al., arXiv 2312.05440) leaves F unconstrained: here a residual MLP in the style
of BayesFlow's consistency models. Time enters as t/T through a Fourier embedding on a log
scale (not raw t, which reaches T and would be badly scaled); the condition embedding and the
time embedding are fed to every residual block. The output layer starts at zero, so an
untrained model is the identity-like ``c_skip(t) * theta_t``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ConsistencyNetwork", "FourierTimeEmbedding"]


class FourierTimeEmbedding(nn.Module):
    """Fourier features of the normalised time t/T, on a logarithmic scale.

    The Karras grid packs most levels near eps, where t/T itself is nearly constant (1e-4 to
    1e-2), so the features use u = 1 + log(t/T) / log(T/eps) in [0, 1], evenly resolving both
    ends; t/T and u are passed as they are too. Frequencies are spaced geometrically from 1 to
    ``max_frequency`` cycles per unit of u (deterministic, so nothing random to save).

    Arguments:
        features: Number of sine and cosine features (even); 2 more raw features are appended.
        max_frequency: Highest frequency in cycles per unit of u.
        log_range: log(T / eps), which maps the time range to u in [0, 1].
    """

    def __init__(self, features: int = 32, max_frequency: float = 16.0, log_range: float = 1.0):
        super().__init__()
        if features < 2 or features % 2:
            raise ValueError(f"time embedding features must be even and >= 2, got {features}")
        frequencies = torch.logspace(0.0, math.log10(max_frequency), features // 2)
        self.register_buffer("frequencies", 2 * math.pi * frequencies, persistent=False)
        self.log_range = float(log_range)
        self.features = features + 2

    def forward(self, normalised_time: Tensor) -> Tensor:
        """Arguments: normalised_time t/T, shape ``(n, 1)``. Returns: ``(n, features + 2)``."""
        u = 1.0 + normalised_time.clamp_min(1e-12).log() / self.log_range
        angles = u * self.frequencies
        return torch.cat([normalised_time, u, angles.sin(), angles.cos()], dim=-1)


class ResidualBlock(nn.Module):
    """Pre-activation residual block ``h + W2 drop(act(W1 act(h) + context_term))``.

    ``context_term`` is the block's projection of the condition and time embeddings. It is an
    input so that callers can compute it once and broadcast it: during sampling, once per
    observation and step instead of once per draw.
    """

    def __init__(self, width: int, condition_features: int, time_features: int, dropout: float):
        super().__init__()
        self.hidden = nn.Linear(width, width)
        self.condition = nn.Linear(condition_features, width, bias=False)
        self.time = nn.Linear(time_features, width, bias=False)
        self.output = nn.Linear(width, width)
        self.dropout = nn.Dropout(dropout)
        self.activation = nn.SiLU()

    def forward(self, h: Tensor, context_term: Tensor) -> Tensor:
        update = self.hidden(self.activation(h)) + context_term
        return h + self.output(self.dropout(self.activation(update)))


class ConsistencyNetwork(nn.Module):
    """Residual MLP F(theta_t, t/T, c) -> R^D.

    The condition and the time embedding enter every block additively (a linear layer on the
    concatenation [h, c, time], split into its three parts), so all inputs may be given with
    broadcastable leading shapes: draws ``(S, B, D)``, time ``(1, 1, 1)``, condition
    ``(1, B, E)`` costs one condition projection per observation, not per draw.

    Arguments:
        parameter_features: Dimension D of theta.
        condition_features: Size of the condition embedding c.
        hidden_features: Width of the residual blocks.
        num_blocks: Number of residual blocks (depth).
        dropout: Dropout probability inside the blocks.
        time_features: Size of the Fourier time embedding.
        log_time_range: log(T / eps) of the noise levels, for the time embedding.
    """

    def __init__(
        self,
        parameter_features: int,
        condition_features: int,
        hidden_features: int = 64,
        num_blocks: int = 2,
        dropout: float = 0.0,
        time_features: int = 32,
        log_time_range: float = 1.0,
    ) -> None:
        super().__init__()
        self.time_embedding = FourierTimeEmbedding(time_features, log_range=log_time_range)
        embedded_time = self.time_embedding.features
        self.input = nn.Linear(parameter_features, hidden_features)
        self.input_condition = nn.Linear(condition_features, hidden_features, bias=False)
        self.input_time = nn.Linear(embedded_time, hidden_features, bias=False)
        self.blocks = nn.ModuleList(
            ResidualBlock(hidden_features, condition_features, embedded_time, dropout)
            for _ in range(num_blocks)
        )
        self.output = nn.Linear(hidden_features, parameter_features)
        nn.init.zeros_(self.output.weight)
        nn.init.zeros_(self.output.bias)
        self.activation = nn.SiLU()

    def context_terms(self, normalised_time: Tensor, condition: Tensor) -> list[Tensor]:
        """The additive condition-and-time term of the input layer and of every block.

        Arguments (leading shapes broadcast against each other):
            normalised_time: t/T, shape ``(..., 1)``.
            condition: Condition embedding, shape ``(..., E)``.

        Returns:
            ``num_blocks + 1`` tensors of shape ``(..., hidden_features)``. The sampler computes
            them once per step and observation, so only the draws' own rows pass the network.
        """
        time = self.time_embedding(normalised_time)
        terms = [self.input_condition(condition) + self.input_time(time)]
        terms.extend(block.condition(condition) + block.time(time) for block in self.blocks)
        return terms

    def forward_terms(self, theta_t: Tensor, terms: list[Tensor]) -> Tensor:
        """F from precomputed :meth:`context_terms`; ``theta_t`` ``(..., D)`` -> ``(..., D)``."""
        h = self.input(theta_t) + terms[0]
        for block, term in zip(self.blocks, terms[1:]):
            h = block(h, term)
        return self.output(self.activation(h))

    @torch.no_grad()
    def sampling_terms(self, normalised_time: Tensor, condition: Tensor) -> list[Tensor]:
        """:meth:`context_terms` with the biases that precede an activation folded in.

        For :meth:`sampling_update` only; shapes as :meth:`context_terms`.
        """
        terms = self.context_terms(normalised_time, condition)
        biases = [self.input.bias] + [block.hidden.bias for block in self.blocks]
        return [term + bias for term, bias in zip(terms, biases)]

    @torch.no_grad()
    def sampling_update(self, theta_t: Tensor, terms: list[Tensor]) -> Tensor:
        """F for sampling: :meth:`forward_terms` without dropout, with fused, in-place ops.

        Each layer is one matrix product on the draws flattened to rows plus one in-place
        addition of its precomputed term, with activations in place; this halves the memory
        passes of sampling, which dominate its cost for a small network. Dropout is never
        applied (evaluation mode); the terms carry their biases, so they are not
        :meth:`forward_terms`'s.

        Arguments:
            theta_t: Noised draws, shape ``(S, B, D)``.
            terms: :meth:`sampling_terms` of one level, each ``(1, B, W)`` or ``(B, W)``.

        Returns:
            F, shape ``(S, B, D)``.
        """
        shape = theta_t.shape
        rows = theta_t.reshape(-1, shape[-1])
        width = self.input.out_features
        h = torch.mm(rows, self.input.weight.t()).view(*shape[:-1], width).add_(terms[0])
        for block, term in zip(self.blocks, terms[1:]):
            hidden = torch.mm(F.silu(h).view(-1, width), block.hidden.weight.t())
            hidden = F.silu(hidden.view(*shape[:-1], width).add_(term), inplace=True)
            h.view(-1, width).addmm_(hidden.view(-1, width), block.output.weight.t())
            h.add_(block.output.bias)
        h = F.silu(h, inplace=True).view(-1, width)
        return torch.addmm(self.output.bias, h, self.output.weight.t()).view(shape)

    def forward(self, theta_t: Tensor, normalised_time: Tensor, condition: Tensor) -> Tensor:
        """Arguments (leading shapes broadcast against each other):
            theta_t: Noised (standardised) parameters, shape ``(..., D)``.
            normalised_time: t/T, shape ``(..., 1)``.
            condition: Condition embedding, shape ``(..., E)``.

        Returns:
            F, shape of ``theta_t`` broadcast with the others' leading shapes, last dim D.
        """
        return self.forward_terms(theta_t, self.context_terms(normalised_time, condition))
