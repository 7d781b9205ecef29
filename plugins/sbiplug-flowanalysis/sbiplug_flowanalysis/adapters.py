"""The decoder z -> theta | x_o of a trained flow posterior, for the entropic metrics.

Every normalizing-flow posterior samples theta = g(z; x_o) with z from a latent distribution;
the manifold entropic metrics (Galperin & Köthe, AISTATS 2025) read g's Jacobian. This module
finds g for:

- sbi NPE flows, nflows based (``"maf"``, ``"nsf"``, ...) and zuko based (``"zuko_nsf"``, ...):
  the trainer, its ``DirectPosterior`` or the density estimator itself;
- any object with a method ``latent_decoder(condition)`` (the duck-typed protocol
  :class:`LatentDecoderProvider`, implemented by sbiplug-fff's free-form flows and
  sbiplug-trade's flows): it returns ``(decoder, latent)`` or ``(decoder, latent,
  tangent_basis)``, or a :class:`LatentDecoder`.

Estimators without a decoder (CMPE, MCMC posteriors of NLE/NRE, mixture density networks)
raise :class:`NoDecoderError`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn
from torch.distributions import Independent, Normal

from sbiplug_flowanalysis.jacobians import Decoder

__all__ = [
    "LatentDecoder",
    "LatentDecoderProvider",
    "NoDecoderError",
    "latent_decoder",
]


class NoDecoderError(TypeError):
    """The estimator or posterior has no decoder z -> theta (not a normalizing flow)."""


@runtime_checkable
class LatentDecoderProvider(Protocol):
    """What a plugin's flow implements to be analysed (no import of this plugin needed).

    ``latent_decoder(condition)`` takes one condition (an observation x_o of the estimator's
    condition shape, with or without a leading batch dimension of 1) and returns
    ``(decoder, latent)`` or ``(decoder, latent, tangent_basis)``: ``decoder`` maps latents
    ``(n, d)`` to parameters ``(n, D)`` in data units, row by row and differentiably;
    ``latent`` has ``sample((n,)) -> (n, d)`` (a torch distribution; a factorised normal
    gives the prior entropies); ``tangent_basis(z) -> (n, d, k)`` is for latents on a
    k-dimensional manifold embedded in R^d.
    """

    def latent_decoder(self, condition: Any) -> Any: ...


@dataclass
class LatentDecoder:
    """A flow posterior's decoder at one observation.

    Attributes:
        decoder: Latents ``(n, d)`` -> parameters ``(n, D)``.
        latent: The latent distribution (``sample((n,))`` gives ``(n, d)``).
        encoder: Parameters ``(n, D)`` -> latents ``(n, d)`` where the flow has one (for the
            metrics over encoded posterior draws), else ``None``.
        tangent_basis: For a latent on an embedded manifold: z ``(n, d)`` -> ``(n, d, k)``.
        kind: What the decoder came from (for messages).
    """

    decoder: Decoder
    latent: Any
    encoder: Callable[[Tensor], Tensor] | None = None
    tangent_basis: Callable[[Tensor], Tensor] | None = None
    kind: str = ""


def _standard_normal(dim: int, dtype: torch.dtype = torch.float32) -> Independent:
    zeros = torch.zeros(dim, dtype=dtype)
    return Independent(Normal(zeros, torch.ones_like(zeros)), 1)


def _condition(estimator: nn.Module, x_o: Any) -> Tensor:
    shape = tuple(getattr(estimator, "condition_shape", ()))
    x_o = torch.as_tensor(x_o, dtype=torch.float32)
    if shape and x_o.numel() != int(torch.Size(shape).numel()):
        raise ValueError(
            f"x_o must be one observation of shape {shape} (optionally with a leading 1), got "
            f"shape {tuple(x_o.shape)}"
        )
    return x_o.reshape(1, *shape) if shape else x_o.reshape(1, -1)


def _nflows_decoder(estimator: nn.Module, x_o: Any) -> LatentDecoder:
    from sbiplug.sbi_internals import nflows_flow_parts

    transform, base, embedding_net = nflows_flow_parts(estimator)
    if type(base).__name__ != "StandardNormal":
        raise NoDecoderError(
            f"the nflows flow's base distribution is {type(base).__name__}; entropic metrics "
            "need a standard normal latent"
        )
    with torch.no_grad():
        embedded = embedding_net(_condition(estimator, x_o))
    dim = int(torch.Size(estimator.input_shape).numel())

    def decoder(z: Tensor) -> Tensor:
        return transform.inverse(z, context=embedded.expand(z.shape[0], -1))[0]

    def encoder(theta: Tensor) -> Tensor:
        return transform(theta.reshape(-1, dim), context=embedded.expand(theta.shape[0], -1))[0]

    return LatentDecoder(decoder, _standard_normal(dim), encoder, kind="nflows")


def _zuko_decoder(estimator: nn.Module, x_o: Any) -> LatentDecoder:
    with torch.no_grad():
        embedded = estimator.embedding_net(_condition(estimator, x_o))
        latent = estimator.net(embedded[0]).base

    def distribution(n: int) -> Any:
        return estimator.net(embedded.expand(n, -1))

    def decoder(z: Tensor) -> Tensor:
        return distribution(z.shape[0]).transform.inv(z)

    def encoder(theta: Tensor) -> Tensor:
        return distribution(theta.shape[0]).transform(theta)

    return LatentDecoder(decoder, latent, encoder, kind="zuko")


def _from_provider(model: Any, x_o: Any) -> LatentDecoder:
    returned = model.latent_decoder(x_o)
    if isinstance(returned, LatentDecoder):
        return returned
    if isinstance(returned, tuple) and len(returned) in (2, 3):
        tangent = returned[2] if len(returned) == 3 else None
        encoder = getattr(returned[0], "encoder", None)
        return LatentDecoder(returned[0], returned[1], encoder, tangent, type(model).__name__)
    raise TypeError(
        f"{type(model).__name__}.latent_decoder() must return (decoder, latent), (decoder, "
        f"latent, tangent_basis) or a LatentDecoder, got {type(returned).__name__}"
    )


def _network(model: Any) -> Any:
    """The density estimator behind a trainer or a posterior (or ``model`` itself)."""
    from sbiplug.sbi_internals import is_trainer, trained_network

    if is_trainer(model):
        network = trained_network(model)
        if network is None:
            raise ValueError(f"{type(model).__name__} has no trained network: call train() first")
        return network
    estimator = getattr(model, "posterior_estimator", None)
    return estimator if estimator is not None else model


def latent_decoder(model: Any, x_o: Any) -> LatentDecoder:
    """The decoder z -> theta | x_o of a trained flow posterior, with its latent.

    Arguments:
        model: An sbi NPE trainer after ``train()``, its ``DirectPosterior``, an sbi
            ``NFlowsFlow``/``ZukoFlow`` density estimator, or any object with
            ``latent_decoder(condition)`` (:class:`LatentDecoderProvider`: sbiplug-fff's
            FFF/M-FFF networks, sbiplug-trade's ``TRADE`` and its flow).
        x_o: The observation (condition) to decode at, shape ``condition_shape`` or
            ``(1, *condition_shape)``.

    Returns:
        The :class:`LatentDecoder`; its decoder maps latents ``(n, d)`` to theta ``(n, D)``
        in parameter units (sbi's own z-scoring of theta is part of the flow).

    Raises:
        NoDecoderError: for estimators that are not normalizing flows (CMPE, MCMC or
            rejection posteriors of NLE/NRE, mixture density networks).
    """
    if isinstance(model, LatentDecoderProvider):
        return _from_provider(model, x_o)
    network = _network(model)
    if isinstance(network, LatentDecoderProvider):
        return _from_provider(network, x_o)
    from sbi.neural_nets.estimators import NFlowsFlow, ZukoFlow

    if isinstance(network, NFlowsFlow):
        return _nflows_decoder(network.eval(), x_o)
    if isinstance(network, ZukoFlow):
        return _zuko_decoder(network.eval(), x_o)
    raise NoDecoderError(
        f"{type(model).__name__} (network {type(network).__name__}) has no decoder z -> theta: "
        "entropic metrics need a normalizing-flow posterior (sbi NPE with an nflows or zuko "
        "flow, sbiplug-fff's FFF/M-FFF, sbiplug-trade's flows, or an object with "
        "latent_decoder(x_o)); consistency models (CMPE), MCMC/rejection posteriors (NLE, NRE) "
        "and mixture density networks have none"
    )
