"""A flow as a stack of invertible layers with a standard normal latent, as an sbi estimator.

theta is z-scored, then pushed through layers ``z <- layer(z, c)`` that each return their
log|det J|; the latent is N(0, I), so log q(theta | x) = log N(z; 0, I) + sum of the layers'
log|det J| + log|det| of the z-scoring. Both coupling flows of this plugin (the gradient-trained
:class:`~sbiplug_flowanalysis.coupling_flow.CouplingFlow` and the constructive
:class:`~sbiplug_flowanalysis.iterative.IterativeCouplingFlow`) are such stacks; they expose the
latent and the log-determinant (:meth:`LayeredFlow.latent_and_log_det`) that the
``volume_preservation`` diagnostic reads. An empty condition shape ``(0,)`` (the default) makes
the flow unconditional: ``condition`` may then be omitted.
"""

from __future__ import annotations

import math

import torch
from sbi.neural_nets.estimators.base import ConditionalDensityEstimator
from torch import Tensor, nn

from sbiplug.sbi_internals import broadcast_and_align, check_condition_shape, check_input_shape
from sbiplug.toolkit import Standardize

__all__ = ["LayeredFlow", "random_rotation"]

_LOG_2PI = math.log(2 * math.pi)


def random_rotation(dim: int, generator: torch.Generator | None = None) -> Tensor:
    """A Haar-distributed random orthogonal matrix, shape ``(dim, dim)`` (QR of a Gaussian)."""
    q, r = torch.linalg.qr(torch.randn(dim, dim, generator=generator, dtype=torch.float64))
    return (q * torch.sign(torch.diagonal(r))).float()


class LayeredFlow(ConditionalDensityEstimator):
    """theta ``(B, D)`` -> z-scoring -> layers -> z ~ N(0, I), conditioned on x ``(B, *shape)``.

    Arguments:
        layers: Modules with ``forward(z, c) -> (z, log_det)`` (shapes ``(N, D)``, ``(N, C)``
            -> ``(N, D)``, ``(N,)``) and ``inverse(z, c) -> z``.
        input_dim: D, the dimension of theta.
        condition_shape: Event shape of x; ``(0,)`` for an unconditional flow.
        theta_shift, theta_scale: z-scoring of theta, shape ``(D,)`` (identity when ``None``).
        x_shift, x_scale: z-scoring of x, shape ``condition_shape`` (identity when ``None``).
    """

    def __init__(
        self,
        layers: list[nn.Module],
        input_dim: int,
        condition_shape: tuple[int, ...] = (0,),
        *,
        theta_shift: Tensor | None = None,
        theta_scale: Tensor | None = None,
        x_shift: Tensor | None = None,
        x_scale: Tensor | None = None,
    ):
        super().__init__(
            nn.ModuleList(layers), torch.Size([input_dim]), torch.Size(condition_shape)
        )
        self.theta_standardize = _standardize(theta_shift, theta_scale, (input_dim,))
        self.x_standardize = _standardize(x_shift, x_scale, tuple(condition_shape))

    @property
    def layers(self) -> nn.ModuleList:
        return self.net

    @property
    def embedding_net(self) -> nn.Module:
        return nn.Identity()

    @property
    def conditional(self) -> bool:
        """Whether the flow has a (non-empty) condition."""
        return math.prod(self.condition_shape) > 0

    # -- the maps ------------------------------------------------------------------------------

    def embed(self, condition: Tensor | None, rows: int) -> Tensor:
        """Standardised, flattened conditions ``(rows, C)`` (``C = 0`` when unconditional)."""
        if condition is None or not self.conditional:
            return self.theta_standardize.shift.new_zeros(rows, 0)
        flat = condition.reshape(rows, *self.condition_shape)
        return self.x_standardize(flat).reshape(rows, -1)

    def forward_flat(self, theta: Tensor, embedded: Tensor) -> tuple[Tensor, Tensor]:
        """theta ``(N, D)`` and embedded x ``(N, C)`` -> latent ``(N, D)``, log|det J| ``(N,)``.

        The log-determinant includes the z-scoring, so ``log q = log N(z) + log_det``.
        """
        z = self.theta_standardize(theta)
        log_det = (-self.theta_standardize.log_abs_det()).expand(len(theta)).clone()
        for layer in self.net:
            z, ladj = layer(z, embedded)
            log_det = log_det + ladj
        return z, log_det

    def inverse_flat(self, z: Tensor, embedded: Tensor) -> Tensor:
        """Latent ``(N, D)`` -> theta ``(N, D)``."""
        for layer in reversed(self.net):
            z = layer.inverse(z, embedded)
        return self.theta_standardize.inverse(z)

    @staticmethod
    def latent_log_prob(z: Tensor) -> Tensor:
        """log N(z; 0, I), shape ``(N,)`` for ``(N, D)``."""
        return -0.5 * (z.pow(2).sum(-1) + z.shape[-1] * _LOG_2PI)

    # -- sbi interface -------------------------------------------------------------------------

    def _aligned(self, input: Tensor, condition: Tensor | None) -> tuple[Tensor, Tensor, int, int]:
        """theta ``(S * B, D)``, embedded x ``(S * B, C)``, S and B from sbi's shapes."""
        if condition is None or not self.conditional:
            if self.conditional:
                raise ValueError("this flow is conditional: pass condition x")
            check_input_shape(self, input)
            flat = input.reshape(-1, input.shape[-1])
            batch = 1 if input.ndim < 2 else input.shape[-2]
            samples = flat.shape[0] // batch
            return flat, self.embed(None, len(flat)), samples, batch
        check_condition_shape(self, condition)
        check_input_shape(self, input)
        input, condition, batch = broadcast_and_align(self, input, condition)
        samples = input.shape[0]
        rows = samples * batch
        embedded = self.embed(condition.reshape(rows, *self.condition_shape), rows)
        return input.reshape(rows, -1), embedded, samples, batch

    def latent_and_log_det(
        self, input: Tensor, condition: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """The latent z and log|det J| of theta -> z, in sbi's shapes.

        Arguments:
            input: theta, shape ``(S, B, D)`` or ``(B, D)``.
            condition: x, shape ``(B, *condition_shape)`` (omit when unconditional).

        Returns:
            z of shape ``(S, B, D)`` and log|det J| of shape ``(S, B)``.
        """
        theta, embedded, samples, batch = self._aligned(input, condition)
        z, log_det = self.forward_flat(theta, embedded)
        return z.reshape(samples, batch, -1), log_det.reshape(samples, batch)

    def log_prob(self, input: Tensor, condition: Tensor | None = None, **kwargs) -> Tensor:
        """Exact log q(theta | x): ``(S, B)`` for theta ``(S, B, D)`` and x ``(B, ...)``.

        Unconditional (no condition): theta ``(*batch, D)`` gives ``(*batch,)``.
        """
        theta, embedded, samples, batch = self._aligned(input, condition)
        z, log_det = self.forward_flat(theta, embedded)
        log_prob = self.latent_log_prob(z) + log_det
        if condition is None or not self.conditional:
            return log_prob.reshape(input.shape[:-1])
        return log_prob.reshape(samples, batch)

    def loss(self, input: Tensor, condition: Tensor | None = None, **kwargs) -> Tensor:
        """Negative log-likelihood per row, shape ``(B,)``."""
        theta, embedded, _, _ = self._aligned(input, condition)
        z, log_det = self.forward_flat(theta, embedded)
        return -(self.latent_log_prob(z) + log_det)

    def sample(self, sample_shape: torch.Size, condition: Tensor | None = None, **kwargs) -> Tensor:
        """Draws ``(*sample_shape, B, D)`` for x ``(B, ...)``; ``(*sample_shape, D)`` without."""
        num = torch.Size(sample_shape).numel()
        dim = self.input_shape[0]
        shift = self.theta_standardize.shift
        with torch.no_grad():
            if condition is None or not self.conditional:
                if self.conditional:
                    raise ValueError("this flow is conditional: pass condition x")
                z = torch.randn(num, dim, dtype=shift.dtype, device=shift.device)
                theta = self.inverse_flat(z, self.embed(None, num))
                return theta.reshape(*sample_shape, dim)
            check_condition_shape(self, condition)
            batch = condition.shape[0]
            embedded = self.embed(condition, batch)
            embedded = embedded.unsqueeze(0).expand(num, *embedded.shape).reshape(num * batch, -1)
            z = torch.randn(num * batch, dim, dtype=shift.dtype, device=shift.device)
            theta = self.inverse_flat(z, embedded)
        return theta.reshape(*sample_shape, batch, dim)


def _standardize(shift: Tensor | None, scale: Tensor | None, shape: tuple[int, ...]) -> Standardize:
    return Standardize(
        torch.zeros(shape) if shift is None else torch.as_tensor(shift, dtype=torch.float32),
        torch.ones(shape) if scale is None else torch.as_tensor(scale, dtype=torch.float32),
    )
