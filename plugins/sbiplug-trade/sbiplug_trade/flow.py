"""The conditional normalizing flow q(x | c) that TRADE trains.

A zuko neural spline flow (monotonic rational-quadratic splines, masked autoregressive or
coupling) conditioned on an embedding of log(c / c0), followed by a c-conditioned global affine
layer and a latent that may scale with temperature: z ~ N(0, (T / T0) I) for a temperature or
N(0, (beta0 / beta) I) for an inverse temperature, exact for quadratic energies (TRADE, Wahl et
al., arXiv 2410.19492, §6). A fixed affine standardisation (from boundary samples) comes first so
the splines' domain [-5, 5] covers the data. The embedding, the hyper-networks' last layers and the
global affine start at zero, so an untrained flow is the standardised base at every condition.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import torch
from torch import Tensor, nn
from zuko.distributions import DiagNormal, NormalizingFlow
from zuko.flows.autoregressive import MaskedAutoregressiveTransform
from zuko.lazy import Flow, LazyDistribution, LazyTransform
from zuko.transforms import DependentTransform, MonotonicAffineTransform, MonotonicRQSTransform

__all__ = ["LATENT_KINDS", "ConditionalFlow"]

LATENT_KINDS = ("standard", "temperature", "inverse_temperature")


class _TemperedNormal(LazyDistribution):
    """N(0, s(c)^2 I), s^2 = c / c0, c0 / c or 1; log(c / c0) is the context's first column."""

    def __init__(self, features: int, exponent: float) -> None:
        super().__init__()
        self.features = features
        self.exponent = exponent

    def forward(self, context: Tensor | None = None) -> DiagNormal:
        log_ratio = context[..., :1]
        scale = torch.exp(0.5 * self.exponent * log_ratio).expand(
            *log_ratio.shape[:-1], self.features
        )
        return DiagNormal(torch.zeros_like(scale), scale)


class _Affine(LazyTransform):
    """x -> exp(a) x + b; constant (standardisation) or predicted from the context."""

    def __init__(
        self,
        features: int,
        context: int = 0,
        shift: Tensor | None = None,
        log_scale: Tensor | None = None,
        hidden: int = 32,
    ) -> None:
        super().__init__()
        self.register_buffer("shift", torch.zeros(features) if shift is None else shift)
        self.register_buffer("log_scale", torch.zeros(features) if log_scale is None else log_scale)
        self.hyper = None
        if context:
            self.hyper = nn.Sequential(
                nn.Linear(context, hidden), nn.SiLU(), nn.Linear(hidden, 2 * features)
            )
            nn.init.zeros_(self.hyper[-1].weight)
            nn.init.zeros_(self.hyper[-1].bias)

    def forward(self, context: Tensor | None = None) -> DependentTransform:
        shift, log_scale = self.shift, self.log_scale
        if self.hyper is not None:
            predicted_shift, predicted_log_scale = self.hyper(context).chunk(2, dim=-1)
            shift = shift + predicted_shift
            log_scale = log_scale + 5 * torch.tanh(predicted_log_scale / 5)
        # MonotonicAffineTransform softly bounds its log-scale by |log(slope)|: keep that wide
        unbounded = log_scale / (1 - log_scale.abs() / math.log(1e-12))
        return DependentTransform(MonotonicAffineTransform(shift, unbounded, slope=1e-12), 1)


class ConditionalFlow(nn.Module):
    """q(x | c): standardise, spline transforms, global affine, tempered Gaussian latent.

    Arguments:
        features: Dimension of x.
        base_condition: c0; the network sees log(c / c0).
        latent: ``"standard"``, ``"temperature"`` or ``"inverse_temperature"``.
        transforms: Number of spline transforms.
        hidden_features: Hidden widths of each hyper-network.
        bins: Spline bins.
        spline_bound: Splines act on [-bound, bound] (standardised units), identity outside.
        passes: Autoregressive passes (``None``: fully autoregressive; 2: coupling).
        embedding_features: Width of the learned log-condition embedding (0: none).
        shift: Standardisation shift, shape ``(features,)``: x_std = (x - shift) / scale.
        scale: Standardisation scale, shape ``(features,)``.
    """

    def __init__(
        self,
        features: int,
        base_condition: float,
        *,
        latent: str = "standard",
        transforms: int = 4,
        hidden_features: tuple[int, ...] = (64, 64),
        bins: int = 8,
        spline_bound: float = 5.0,
        passes: int | None = None,
        embedding_features: int = 8,
        shift: Tensor | None = None,
        scale: Tensor | None = None,
    ) -> None:
        super().__init__()
        if latent not in LATENT_KINDS:
            raise ValueError(f"latent must be one of {LATENT_KINDS}, got {latent!r}")
        self.features = features
        self.base_condition = float(base_condition)
        self.latent = latent
        self.embedding = None
        context = 1 + embedding_features
        if embedding_features:
            self.embedding = nn.Sequential(
                nn.Linear(1, 32), nn.SiLU(), nn.Linear(32, embedding_features)
            )
            nn.init.zeros_(self.embedding[-1].weight)
            nn.init.zeros_(self.embedding[-1].bias)
        shift = torch.zeros(features) if shift is None else torch.as_tensor(shift).float()
        scale = torch.ones(features) if scale is None else torch.as_tensor(scale).float()
        layers: list[LazyTransform] = [
            _Affine(features, shift=-shift / scale, log_scale=-scale.log())
        ]
        for index in range(transforms):
            order = torch.arange(features)
            spline = MaskedAutoregressiveTransform(
                features,
                context,
                passes=passes,
                order=order if index % 2 == 0 else order.flip(0),
                univariate=partial(MonotonicRQSTransform, bound=spline_bound),
                shapes=[(bins,), (bins,), (bins - 1,)],
                hidden_features=hidden_features,
            )
            final = spline.hyper[-1] if hasattr(spline, "hyper") else None
            if isinstance(final, nn.Linear):
                final.weight.data.mul_(0.01)
                final.bias.data.mul_(0.01)
            layers.append(spline)
        layers.append(_Affine(features, context))
        exponent = {"standard": 0.0, "temperature": 1.0, "inverse_temperature": -1.0}[latent]
        self.flow = Flow(layers, _TemperedNormal(features, exponent))

    def context(self, c: Tensor) -> Tensor:
        """The network's view of the condition: [log(c / c0), embedding], shape ``(n, 1 + k)``."""
        log_ratio = torch.log(c / self.base_condition)
        if self.embedding is None:
            return log_ratio
        return torch.cat([log_ratio, self.embedding(log_ratio)], dim=-1)

    def forward(self, c: Tensor) -> NormalizingFlow:
        """The distribution q(x | c) for a batch of conditions ``c`` of shape ``(n, 1)``."""
        return self.flow(self.context(c))

    def log_prob(self, x: Tensor, c: Tensor) -> Tensor:
        """log q(x | c), shape ``(n,)`` for ``x`` ``(n, features)`` and ``c`` ``(n, 1)``."""
        return self(c).log_prob(x)

    def rsample_and_log_prob(self, c: Tensor) -> tuple[Tensor, Tensor]:
        """One reparameterised draw per row of ``c`` ``(n, 1)`` and its log q."""
        return self(c).rsample_and_log_prob()

    def latent_decoder(self, c: float | Tensor) -> tuple[Callable[[Tensor], Tensor], DiagNormal]:
        """The sampler z -> x at one condition c and its latent, for entropic metrics.

        The duck-typed protocol of sbiplug-flowanalysis: ``decoder`` maps latents ``(n, d)``
        to x ``(n, d)`` row by row; the latent is the (tempered) normal at c.
        """
        c = torch.as_tensor(c, dtype=torch.float32).reshape(1)
        with torch.no_grad():
            context = self.context(c)  # (1 + k,): an unbatched latent

        def decoder(z: Tensor) -> Tensor:
            return self.flow(context.expand(z.shape[0], -1)).transform.inv(z)

        return decoder, self.flow(context).base
