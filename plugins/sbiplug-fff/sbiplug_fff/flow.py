"""Conditional free-form flows (FFF, M-FFF) as sbi ``ConditionalDensityEstimator`` objects.

Draxler et al., *Free-form Flows* (arXiv 2310.16624) and Sorrenson et al., *Learning
Distributions on Manifolds with Free-form Flows* (arXiv 2312.09852). An encoder f and a decoder
g (free-form residual MLPs conditioned on the embedded observation) are trained so that g ~ f^-1
and f pushes the data to the latent distribution. On a manifold both outputs are projected onto
it. Sampling is one decoder pass: theta = g(z, x) with z ~ p_Z. The density is exact:
log q(theta | x) = log p_Z(z | x) - log|det R^T J_g(z) Q| at z = f(theta, x) (the "decoder
version", the density of the sampler; trustworthy when the reconstruction error is small, see
:meth:`FreeFormFlow.reconstruction_error`). p_Z is a standard normal (FFF), or on a manifold the
uniform distribution or a learned conditional von Mises(-Fisher) mixture
(:mod:`sbiplug_fff.latents`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from sbi.neural_nets.estimators.base import ConditionalDensityEstimator
from torch import Tensor, nn
from torch.distributions import Distribution, Independent, Normal

from sbiplug.sbi_internals import broadcast_and_align, check_condition_shape, check_input_shape
from sbiplug.toolkit import Standardize
from sbiplug_fff.distributions import UniformManifold
from sbiplug_fff.latents import ConditionalMixtureLatent, resolve_latent
from sbiplug_fff.loss import tangent_log_abs_det, volume_change_surrogate
from sbiplug_fff.manifolds import Euclidean, Manifold, get_manifold
from sbiplug_fff.networks import ConditionalResidualNet

__all__ = ["FreeFormFlow", "ManifoldFreeFormFlow"]

# The smallest posterior scale per dimension adaptive_beta reacts to (beta grows <= 10^4 x).
_MIN_SCALE = 0.01


class FreeFormFlow(ConditionalDensityEstimator):
    """A conditional free-form flow on R^D with a standard normal latent.

    Arguments:
        input_dim: Dimension D of theta.
        condition_shape: Event shape of the condition x (``(0,)`` for unconditional use).
        hidden_features, num_blocks: Size of the residual encoder and decoder.
        embedding_net: Optional network applied to the standardised condition.
        beta: Weight of the reconstruction term (a sum of squares over dimensions).
        latent_reconstruction_weight: Weight of |w - f(g(w))|^2 for latent draws w ~ p_Z.
        adaptive_beta: Make ``beta`` relative to the posterior's scale, see
            :attr:`training_beta` (updated by each validation pass, i.e. by sbi's trainer).
        hutchinson_samples: Number K of Hutchinson vectors per step (K = D is exact).
        theta_shift, theta_scale: Standardisation of theta, shape ``(D,)``.
        x_shift, x_scale: Standardisation of the condition, shape ``condition_shape``.
        chunk_size: Rows per vectorised Jacobian chunk in :meth:`log_prob`.

    The loss in training mode is the free-form objective per row; in evaluation mode (sbi's
    validation) it is the exact negative log-likelihood plus the reconstruction term, so that
    early stopping follows the quantity of interest.
    """

    manifold: Manifold

    def __init__(
        self,
        input_dim: int,
        condition_shape: tuple[int, ...],
        *,
        hidden_features: int = 128,
        num_blocks: int = 2,
        embedding_net: nn.Module | None = None,
        embedding_dim: int | None = None,
        beta: float = 25.0,
        latent_reconstruction_weight: float = 0.0,
        adaptive_beta: bool = False,
        hutchinson_samples: int = 1,
        theta_shift: Tensor | None = None,
        theta_scale: Tensor | None = None,
        x_shift: Tensor | None = None,
        x_scale: Tensor | None = None,
        chunk_size: int | None = 1024,
    ):
        condition_shape = tuple(condition_shape)
        if embedding_net is None:
            embedding_net = nn.Flatten(-len(condition_shape))
        if embedding_dim is None:
            with torch.no_grad():
                embedding_dim = embedding_net(torch.zeros(2, *condition_shape)).shape[-1]
        self._setup_manifold(input_dim)
        net = nn.ModuleDict(
            {
                part: ConditionalResidualNet(input_dim, embedding_dim, hidden_features, num_blocks)
                for part in ("encoder", "decoder")
            }
        )
        super().__init__(net, torch.Size([input_dim]), torch.Size(condition_shape))
        self._embedding_net = embedding_net
        self.embedding_features = int(embedding_dim)
        self.beta = float(beta)
        self.latent_reconstruction_weight = float(latent_reconstruction_weight)
        self.adaptive_beta = bool(adaptive_beta)
        # log of the posterior's scale per dimension in flow space, from the last validation
        self.log_posterior_scale = 0.0
        self._validation_scales = [0.0, 0]  # running sum of per-row log scales, rows
        self.hutchinson_samples = int(hutchinson_samples)
        self.chunk_size = chunk_size
        self.theta_standardize = _standardize(theta_shift, theta_scale, (input_dim,))
        self.x_standardize = _standardize(x_shift, x_scale, condition_shape)

    def _setup_manifold(self, input_dim: int) -> None:
        self.manifold = Euclidean(input_dim)

    # -- the pieces ---------------------------------------------------------------------------

    @property
    def embedding_net(self) -> nn.Module:
        return self._embedding_net

    @property
    def latent(self) -> Distribution:
        """The latent distribution p_Z."""
        zeros = self.theta_standardize.shift.new_zeros(self.manifold.embedding_dim)
        return Independent(Normal(zeros, torch.ones_like(zeros)), 1)

    def latent_log_prob(self, z: Tensor, embedded: Tensor) -> Tensor:
        """log p_Z(z | x) for latents ``(B, D)`` and embedded conditions ``(B, C)``: ``(B,)``."""
        return self.latent.log_prob(z)

    def latent_sample(self, embedded: Tensor) -> Tensor:
        """One latent draw per embedded condition ``(B, C)``: ``(B, D)``."""
        return self.latent.sample((embedded.shape[0],)).to(embedded.dtype)

    def embed(self, condition: Tensor) -> Tensor:
        """Standardise and embed conditions ``(*, *condition_shape) -> (*, C)``."""
        batch = condition.shape[: condition.ndim - len(self.condition_shape)]
        flat = condition.reshape(math.prod(batch), *self.condition_shape)
        embedded = self._embedding_net(self.x_standardize(flat))
        return embedded.reshape(*batch, embedded.shape[-1])

    def encode(self, theta: Tensor, embedded: Tensor) -> tuple[Tensor, Tensor]:
        """Flow-space theta ``(*, D)`` -> (z on the manifold, raw encoder output)."""
        raw = self.net["encoder"](theta, embedded)
        return self.manifold.project(raw), raw

    def decode(self, z: Tensor, embedded: Tensor) -> tuple[Tensor, Tensor]:
        """Latent z ``(*, D)`` -> (flow-space theta on the manifold, raw decoder output)."""
        raw = self.net["decoder"](z, embedded)
        return self.manifold.project(raw), raw

    @property
    def theta_shift(self) -> Tensor:
        """The standardisation shift of theta, shape ``(D,)``."""
        return self.theta_standardize.shift

    @property
    def theta_scale(self) -> Tensor:
        """The standardisation scale of theta, shape ``(D,)``."""
        return self.theta_standardize.scale

    def to_flow_space(self, theta: Tensor) -> Tensor:
        return self.theta_standardize(theta)

    def from_flow_space(self, theta: Tensor) -> Tensor:
        return self.theta_standardize.inverse(theta)

    def log_abs_det_standardisation(self) -> Tensor:
        """log|det| of the map from flow space to parameter space."""
        return self.theta_standardize.log_abs_det()

    # -- sbi interface ------------------------------------------------------------------------

    def loss(self, input: Tensor, condition: Tensor, **kwargs) -> Tensor:
        """Per-row loss, shape ``(B,)``, for theta ``(B, D)`` and x ``(B, *condition_shape)``."""
        theta = self.to_flow_space(input)
        embedded = self.embed(condition)
        if not self.training:
            z, _ = self.encode(theta, embedded)
            x1, log_det = self._decoder_log_det(z, embedded)
            nll = -(self.latent_log_prob(z, embedded) - log_det)
            if self.adaptive_beta:
                log_scale = (log_det / self.manifold.dim).clamp(math.log(_MIN_SCALE), 0.0)
                self._validation_scales[0] += float(log_scale.sum())
                self._validation_scales[1] += len(log_scale)
            # the fixed beta: validation losses stay comparable across epochs (early stopping)
            return nll + self.beta * (theta - x1).pow(2).sum(-1)
        with torch.enable_grad():
            return self._training_loss(theta, embedded)

    @property
    def training_beta(self) -> float:
        """The reconstruction weight of a training step.

        ``beta`` itself, or with ``adaptive_beta`` ``beta / s^2``, where s (<= 1) is the
        posterior's scale per dimension in flow space: the geometric mean of the decoder's
        Jacobian, exp(log|det J_g| / n), averaged in log over the last validation pass. The
        reconstruction error is then weighed relative to the posterior's width, not the
        prior's. Validation keeps ``beta``, so that its losses compare across epochs.
        """
        if not self.adaptive_beta:
            return self.beta
        total, rows = self._validation_scales
        if rows:
            self.log_posterior_scale = total / rows
            self._validation_scales = [0.0, 0]
        return self.beta * math.exp(-2 * self.log_posterior_scale)

    def _training_loss(self, theta: Tensor, embedded: Tensor) -> Tensor:
        theta = theta.detach().requires_grad_(True)
        z, _, x1, _, surrogate = volume_change_surrogate(
            theta,
            lambda t: self.encode(t, embedded),
            lambda z: self.decode(z, embedded),
            self.manifold.tangent_basis,
            self.hutchinson_samples,
        )
        reconstruction = (theta - x1).pow(2).sum(-1)
        loss = self.training_beta * reconstruction - self.latent_log_prob(z, embedded) - surrogate
        return loss + self._latent_reconstruction(embedded, theta)

    def _latent_reconstruction(self, embedded: Tensor, like: Tensor) -> Tensor:
        """Weighted |w - f(g(w))|^2 for w ~ p_Z, shape ``(B,)`` (0 at weight 0).

        Measured in latent units, i.e. relative to the posterior's own width in every
        direction, this keeps the sampler g the inverse of f at the posterior's scale however
        narrow the posterior is next to the prior that sets the standardisation.
        """
        if not self.latent_reconstruction_weight:
            return like.new_zeros(like.shape[0])
        latent = self.latent_sample(embedded).to(like)
        back = self.encode(self.decode(latent, embedded)[0], embedded)[0]
        return self.latent_reconstruction_weight * (latent - back).pow(2).sum(-1)

    def _decoder_log_det(self, z: Tensor, embedded: Tensor) -> tuple[Tensor, Tensor]:
        def decode_one(z_row: Tensor, c_row: Tensor) -> Tensor:
            return self.decode(z_row, c_row)[0]

        return tangent_log_abs_det(
            decode_one, z, embedded, self.manifold.tangent_basis, self.chunk_size
        )

    def log_prob(self, input: Tensor, condition: Tensor, **kwargs) -> Tensor:
        """Exact log q(theta | x) with respect to Lebesgue measure (FFF) or the manifold volume.

        Arguments:
            input: theta, shape ``(S, B, D)`` or ``(B, D)``.
            condition: x, shape ``(B, *condition_shape)`` or ``(S, B, *condition_shape)``.

        Returns:
            Log densities, shape ``(S, B)``.
        """
        check_condition_shape(self, condition)
        check_input_shape(self, input)
        input, condition, batch = broadcast_and_align(self, input, condition)
        samples = input.shape[0]
        theta = self.to_flow_space(input.reshape(samples * batch, -1))
        embedded = self.embed(condition.reshape(samples * batch, *self.condition_shape))
        z, _ = self.encode(theta, embedded)
        _, log_det = self._decoder_log_det(z, embedded)
        log_prob = self.latent_log_prob(z, embedded) - log_det - self.log_abs_det_standardisation()
        return log_prob.reshape(samples, batch)

    def sample(self, sample_shape: torch.Size, condition: Tensor, **kwargs) -> Tensor:
        """One decoder pass per draw: samples ``(*sample_shape, B, D)`` for x ``(B, ...)``."""
        check_condition_shape(self, condition)
        batch = condition.shape[0]
        num_samples = torch.Size(sample_shape).numel()
        with torch.no_grad():
            embedded = self.embed(condition)
            embedded = embedded.unsqueeze(0).expand(num_samples, *embedded.shape)
            flat = embedded.reshape(num_samples * batch, -1)
            z = self.latent_sample(flat).reshape(num_samples, batch, -1)
            theta = self.from_flow_space(self.decode(z, embedded)[0])
        return theta.reshape(*sample_shape, batch, *self.input_shape)

    def reconstruction_error(self, input: Tensor, condition: Tensor) -> Tensor:
        """|theta - g(f(theta))| per row in flow space, shape ``(B,)``; small = exact density."""
        with torch.no_grad():
            theta = self.to_flow_space(input)
            embedded = self.embed(condition)
            z, _ = self.encode(theta, embedded)
            return (theta - self.decode(z, embedded)[0]).norm(dim=-1)

    def latent_decoder(self, condition: Tensor) -> tuple[Callable[[Tensor], Tensor], Any]:
        """The sampler z -> theta at one condition and its latent, for entropic metrics.

        The duck-typed protocol of sbiplug-flowanalysis: ``decoder`` maps latents ``(n, d)``
        to theta ``(n, D)`` in parameter units, row by row; ``latent.sample((n,))`` draws z.

        Arguments:
            condition: One observation x, shape ``condition_shape`` (or with a leading 1).
        """
        with torch.no_grad():
            condition = torch.as_tensor(condition).float().reshape(1, *self.condition_shape)
            embedded = self.embed(condition)

        def decoder(z: Tensor) -> Tensor:
            return self.from_flow_space(self.decode(z, embedded.expand(z.shape[0], -1))[0])

        return decoder, self._latent_at(embedded)

    def _latent_at(self, embedded: Tensor) -> Any:
        return self.latent


class ManifoldFreeFormFlow(FreeFormFlow):
    """A conditional free-form flow on an embedded manifold (M-FFF).

    Arguments:
        manifold: A :class:`~sbiplug_fff.manifolds.Manifold` or ``"sphere"``, ``"torus"``,
            ``"so3"``.
        condition_shape: Event shape of the condition (``(0,)`` for unconditional use).
        beta: Weight of the reconstruction term.
        projection_weight: Weight of |raw - pi(raw)|^2 for encoder and decoder outputs.
        uniform_reconstruction_weight: Weight of |u - g(f(u))|^2 for u uniform on M, which
            keeps the flow invertible where there is no data.
        latent_reconstruction_weight: Weight of |w - f(g(w))|^2 for w ~ p_Z.
        noise: Standard deviation of Gaussian noise added to theta in the embedding during
            training, then re-projected onto the manifold.
        latent: ``"uniform"`` (the uniform distribution on M, as in the paper's torus and SO(3)
            runs), ``"mixture"`` (a learnable mixture of von Mises(-Fisher) components whose
            parameters are a small network of the embedded condition; sphere and torus, see
            :mod:`sbiplug_fff.latents`) or ``"auto"``: the mixture where it exists, else
            uniform. The mixture lets the flow learn only a correction to a posterior-shaped
            latent (see benchmarks/results/fff.txt for the torus_angles comparison).
        latent_components, latent_hidden_features: Size of the mixture latent and its network.
        **kwargs: Passed to :class:`FreeFormFlow` (network size, embedding net, x scaling).

    theta is not standardised: it already lies on the manifold.
    """

    def __init__(
        self,
        manifold: Manifold | str,
        condition_shape: tuple[int, ...],
        *,
        beta: float = 100.0,
        projection_weight: float = 10.0,
        uniform_reconstruction_weight: float = 10.0,
        latent_reconstruction_weight: float = 10.0,
        noise: float = 0.0,
        latent: str = "auto",
        latent_components: int = 4,
        latent_hidden_features: int = 64,
        **kwargs,
    ):
        self._manifold_argument = get_manifold(manifold)
        for name in ("theta_shift", "theta_scale"):
            if kwargs.get(name) is not None:
                raise ValueError(f"ManifoldFreeFormFlow does not standardise theta; drop {name}")
        super().__init__(
            self._manifold_argument.embedding_dim,
            condition_shape,
            beta=beta,
            latent_reconstruction_weight=latent_reconstruction_weight,
            **kwargs,
        )
        self.projection_weight = float(projection_weight)
        self.uniform_reconstruction_weight = float(uniform_reconstruction_weight)
        self.noise = float(noise)
        latent = resolve_latent(latent, self.manifold)
        self.latent_kind = latent
        self.mixture_latent = (
            ConditionalMixtureLatent(
                self.manifold,
                self.embedding_features,
                components=latent_components,
                hidden_features=latent_hidden_features,
            )
            if latent == "mixture"
            else None
        )

    def _setup_manifold(self, input_dim: int) -> None:
        self.manifold = self._manifold_argument

    @property
    def latent(self) -> Distribution:
        """The uniform latent (with ``latent="mixture"`` see :meth:`latent_log_prob`)."""
        return UniformManifold(self.manifold)

    def latent_log_prob(self, z: Tensor, embedded: Tensor) -> Tensor:
        if self.mixture_latent is None:
            return super().latent_log_prob(z, embedded)
        return self.mixture_latent.log_prob(z, embedded)

    def latent_sample(self, embedded: Tensor) -> Tensor:
        if self.mixture_latent is None:
            return super().latent_sample(embedded)
        return self.mixture_latent.sample(embedded)

    def latent_decoder(self, condition: Tensor) -> tuple[Any, Any, Callable[[Tensor], Tensor]]:
        """As :meth:`FreeFormFlow.latent_decoder`, plus the latent manifold's tangent bases."""
        decoder, latent = super().latent_decoder(condition)
        return decoder, latent, self.manifold.tangent_basis

    def _latent_at(self, embedded: Tensor) -> Any:
        if self.mixture_latent is None:
            return self.latent
        flow = self

        class _ConditionedMixture:
            def sample(self, shape: tuple[int, ...] = (1,)) -> Tensor:
                return flow.mixture_latent.sample(embedded.expand(shape[0], -1))

        return _ConditionedMixture()

    def log_abs_det_standardisation(self) -> Tensor:
        return self.theta_standardize.shift.new_zeros(())

    def _training_loss(self, theta: Tensor, embedded: Tensor) -> Tensor:
        if self.noise > 0:
            theta = self.manifold.project(theta + self.noise * torch.randn_like(theta))
        theta = theta.detach().requires_grad_(True)
        z, z_raw, x1, x1_raw, surrogate = volume_change_surrogate(
            theta,
            lambda t: self.encode(t, embedded),
            lambda z: self.decode(z, embedded),
            self.manifold.tangent_basis,
            self.hutchinson_samples,
        )
        loss = self.training_beta * (theta - x1).pow(2).sum(-1) - surrogate
        if self.mixture_latent is not None:
            loss = loss - self.mixture_latent.log_prob(z, embedded)
        if self.projection_weight:
            off_manifold = (z_raw - z).pow(2).sum(-1) + (x1_raw - x1).pow(2).sum(-1)
            loss = loss + self.projection_weight * off_manifold
        if self.uniform_reconstruction_weight:
            uniform = self.manifold.sample_uniform((theta.shape[0],)).to(theta)
            back = self.decode(self.encode(uniform, embedded)[0], embedded)[0]
            loss = loss + self.uniform_reconstruction_weight * (uniform - back).pow(2).sum(-1)
        loss = loss + self._latent_reconstruction(embedded, theta)
        if self.mixture_latent is None:
            # log p_Z is the constant -log vol(M): added so the value reads as an NLL estimate
            loss = loss + self.manifold.log_volume
        return loss


def _standardize(shift: Tensor | None, scale: Tensor | None, shape: tuple[int, ...]) -> Standardize:
    """The z-scoring by ``shift`` and ``scale`` (the identity where they are ``None``)."""
    return Standardize(
        torch.zeros(shape) if shift is None else shift,
        torch.ones(shape) if scale is None else scale,
    )
