"""The TRADE residual: d log q(x | c) / dc against the self-normalised IS estimate of d log p / dc.

From log p = log p~ - log Z and d log Z / dc = E_p[d log p~ / dc] (TRADE, Wahl et al., arXiv
2410.19492, eq. for ∂_c log p):

    d log p(x | c) / dc = d log p~(x | c) / dc - E_{x' ~ p(. | c)}[d log p~(x' | c) / dc]

The expectation is estimated under ``no_grad`` by self-normalised importance sampling with the
flow at the same c as proposal, log w_i = log p~(x_i | c) - log q(x_i | c), one condition per
group of proposals (the softmax is a batch statistic: never mix conditions inside a group). The
flow's derivative comes from autograd with a per-row leaf c (a broadcast scalar would sum the
rows' derivatives) and ``create_graph=True`` so the residual trains the flow.

The same weights give the importance-weighted forward KL, -sum_i w_i log q(x_i | c) with w
self-normalised and detached: its gradient estimates that of KL(p(. | c) || q(. | c)) from the
flow's own draws (neural importance sampling, Müller et al., ACM TOG 2019). Unlike the
derivative residual it is mass-covering: it lifts q wherever q under-weights p.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from sbiplug import Target
from sbiplug_trade.checks import condition_gradient
from sbiplug_trade.flow import ConditionalFlow

__all__ = [
    "flow_condition_gradient_and_log_prob",
    "importance_weighted_forward_kl",
    "log_effective_sample_size",
    "snis_condition_mean",
]


def log_effective_sample_size(log_weights: Tensor, dim: int = -1) -> Tensor:
    """log of the normalised ESS (sum w)^2 / (n sum w^2) along ``dim``, via logsumexp."""
    n = log_weights.shape[dim]
    return (
        2 * torch.logsumexp(log_weights, dim=dim)
        - torch.logsumexp(2 * log_weights, dim=dim)
        - math.log(n)
    )


@torch.no_grad()
def snis_condition_mean(
    target: Target, proposals: Tensor, log_q: Tensor, conditions: Tensor
) -> tuple[Tensor, Tensor]:
    """E_{p(.|c_k)}[d log p~ / dc] for each group k by self-normalised importance sampling.

    Arguments:
        target: The density family.
        proposals: Draws from q(. | c_k), shape ``(k, m, dim)``.
        log_q: Their log q(x | c_k), shape ``(k, m)``.
        conditions: c_k, shape ``(k,)``.

    Returns:
        The means, shape ``(k,)``, and the normalised ESS of each group's weights, shape ``(k,)``.
    """
    groups, per_group, dim = proposals.shape
    rows = conditions.repeat_interleave(per_group)[:, None]
    log_density, gradient = condition_gradient(target, proposals.reshape(-1, dim), rows)
    log_weights = (log_density.reshape(groups, per_group) - log_q).nan_to_num(nan=-math.inf)
    weights = torch.softmax(log_weights, dim=-1)
    mean = (weights * gradient.reshape(groups, per_group).nan_to_num(0.0)).sum(-1)
    return mean, log_effective_sample_size(log_weights).exp()


def flow_condition_gradient_and_log_prob(
    flow: ConditionalFlow, x: Tensor, c: Tensor
) -> tuple[Tensor, Tensor]:
    """d log q(x_i | c_i) / dc_i and log q(x_i | c_i) for every row, differentiable in the flow.

    Arguments:
        flow: The conditional flow.
        x: Points, shape ``(n, dim)``.
        c: Conditions, shape ``(n, 1)``.

    Returns:
        The derivatives and the log densities, both of shape ``(n,)``.
    """
    leaf = c.detach().clone().requires_grad_(True)
    log_q = flow.log_prob(x, leaf)
    (gradient,) = torch.autograd.grad(log_q.sum(), leaf, create_graph=True)
    return gradient.reshape(-1), log_q


def importance_weighted_forward_kl(log_q: Tensor, log_density: Tensor) -> Tensor:
    """-sum_i w_i log q(x_i | c_k) per group, w_i ∝ p~(x_i | c_k) / q(x_i | c_k) detached.

    Up to a constant in the flow's parameters this estimates KL(p(. | c_k) || q(. | c_k)) with
    the flow's own draws as proposals; points where either density is not finite get no weight.

    Arguments:
        log_q: log q(x_i | c_k) of draws from q(. | c_k), differentiable, shape ``(k, m)``.
        log_density: log p~(x_i | c_k), shape ``(k, m)``.

    Returns:
        The per-group losses, shape ``(k,)``.
    """
    finite = torch.isfinite(log_q) & torch.isfinite(log_density)
    with torch.no_grad():
        log_weights = torch.where(finite, log_density - log_q, torch.full_like(log_q, -math.inf))
        weights = torch.softmax(log_weights, dim=-1).nan_to_num(0.0)
    return -(weights * torch.where(finite, log_q, torch.zeros_like(log_q))).sum(-1)
