"""Free-form injective flows (FIF): a density on a learned d-dimensional manifold in R^D.

Sorrenson, Draxler, Rousselot, Hummerich, Zimmermann, Köthe, *Lifting Architectural Constraints
of Injective Flows* (ICLR 2024, arXiv 2306.01843). A free-form encoder f: R^D -> R^d and decoder
g: R^d -> R^D (residual MLPs, optionally conditioned on c) are trained with

    L(x) = beta ||x - g(f(x))||^2 - log p_Z(f(x)) - v^T J_f(x) SG[J_g(f(x)) v]

on data with a little Gaussian noise (:mod:`sbiplug_fff.injective_loss`), p_Z = N(0, I_d).
The model density lives on the manifold g(R^d); :meth:`FreeFormInjectiveFlow.log_prob` is
exact there (log p_Z(z) - 1/2 log det(J_g^T J_g) at z = f(x)), and
:meth:`FreeFormInjectiveFlow.reconstruction_error` measures how far x lies off it. Data are
z-scored per coordinate inside the flow; densities are reported in the data's own units.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sbiplug.toolkit import Standardize, check_positive, check_positive_int
from sbiplug_fff.injective_loss import half_log_det_gram, injective_surrogate

__all__ = ["FreeFormInjectiveFlow", "InjectiveResidualNet"]


class InjectiveResidualNet(nn.Module):
    """y = W x + MLP([x, c]): a residual SiLU MLP between dimensions, with a linear skip.

    Arguments:
        in_features: Input dimension.
        out_features: Output dimension.
        condition_features: Dimension of the condition c (0 for none).
        hidden_features: Width of the hidden layers.
        num_blocks: Number of residual blocks (two linear layers each).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        condition_features: int = 0,
        hidden_features: int = 128,
        num_blocks: int = 2,
    ):
        super().__init__()
        self.skip = nn.Linear(in_features, out_features, bias=False)
        self.input_layer = nn.Linear(in_features + condition_features, hidden_features)
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.SiLU(),
                nn.Linear(hidden_features, hidden_features),
                nn.SiLU(),
                nn.Linear(hidden_features, hidden_features),
            )
            for _ in range(num_blocks)
        )
        self.output_layer = nn.Sequential(nn.SiLU(), nn.Linear(hidden_features, out_features))

    def forward(self, x: Tensor, condition: Tensor) -> Tensor:
        """Arguments: x ``(*, in)``, condition ``(*, C)``. Returns: ``(*, out)``."""
        hidden = self.input_layer(torch.cat([x, condition], dim=-1))
        for block in self.blocks:
            hidden = hidden + block(hidden)
        return self.skip(x) + self.output_layer(hidden)


class FreeFormInjectiveFlow(nn.Module):
    """An injective free-form flow R^d -> R^D, unconditional or conditioned on c ``(C,)``.

    Arguments:
        features: Data dimension D.
        latent_features: Manifold (latent) dimension d < D.
        condition_features: Dimension C of a condition (0: unconditional).
        hidden_features, num_blocks: Size of the residual encoder and decoder.
        beta: Weight of the reconstruction term (a sum of squares over the z-scored
            coordinates); the authors use 10.
        noise: Standard deviation of the Gaussian noise added to the z-scored training data.
        hutchinson_samples: Number K <= d of Hutchinson vectors per step.
        shift, scale: Per-coordinate z-scoring of x, shape ``(D,)`` (see :meth:`set_scaling`).
        chunk_size: Rows per vectorised Jacobian chunk in :meth:`log_prob`.
    """

    def __init__(
        self,
        features: int,
        latent_features: int,
        condition_features: int = 0,
        *,
        hidden_features: int = 128,
        num_blocks: int = 2,
        beta: float = 10.0,
        noise: float = 0.01,
        hutchinson_samples: int = 1,
        shift: Tensor | None = None,
        scale: Tensor | None = None,
        chunk_size: int | None = 256,
    ):
        super().__init__()
        owner = "FreeFormInjectiveFlow"
        features = check_positive_int("features", features, owner=owner)
        latent_features = check_positive_int("latent_features", latent_features, owner=owner)
        if latent_features >= features:
            raise ValueError(
                f"{owner}: latent_features (d = {latent_features}) must be smaller than the data "
                f"dimension (D = {features}); use a free-form flow ('fff') when d = D"
            )
        if not 1 <= hutchinson_samples <= latent_features:
            raise ValueError(
                f"{owner}: hutchinson_samples must be in [1, {latent_features}], "
                f"got {hutchinson_samples}"
            )
        self.features, self.latent_features = features, latent_features
        self.condition_features = int(condition_features)
        self.beta = check_positive("beta", beta, owner=owner)
        self.noise = float(noise)
        if self.noise < 0:
            raise ValueError(f"{owner}: noise must be >= 0, got {noise}")
        self.hutchinson_samples = int(hutchinson_samples)
        self.chunk_size = chunk_size
        c = self.condition_features
        self.encoder = InjectiveResidualNet(
            features, latent_features, c, hidden_features, num_blocks
        )
        self.decoder = InjectiveResidualNet(
            latent_features, features, c, hidden_features, num_blocks
        )
        shift = torch.zeros(features) if shift is None else torch.as_tensor(shift).float()
        scale = torch.ones(features) if scale is None else torch.as_tensor(scale).float()
        self.standardize = Standardize(shift.reshape(features), scale.reshape(features))

    # -- data checks and scaling ---------------------------------------------------------------

    def check_data(self, x: Tensor, condition: Tensor | None = None, what: str = "x") -> Tensor:
        """``condition`` as ``(N, C)`` after checking ``x`` ``(N, D)`` and it; errors name both."""
        if not isinstance(x, Tensor) or x.ndim != 2 or x.shape[1] != self.features:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(
                f"FreeFormInjectiveFlow: {what} must have shape (N, {self.features}), got {shape}"
            )
        if condition is None:
            if self.condition_features:
                raise ValueError(
                    f"FreeFormInjectiveFlow: this flow is conditional (C = "
                    f"{self.condition_features}); pass a condition of shape (N, C)"
                )
            return x.new_zeros(x.shape[0], 0)
        if condition.shape != (x.shape[0], self.condition_features):
            raise ValueError(
                f"FreeFormInjectiveFlow: condition must have shape ({x.shape[0]}, "
                f"{self.condition_features}), got {tuple(condition.shape)}"
            )
        return condition.to(x.dtype)

    @torch.no_grad()
    def set_scaling(self, x: Tensor) -> None:
        """Set the per-coordinate z-scoring from data ``(N, D)`` (finite rows)."""
        fitted = Standardize.from_data(x)
        self.standardize.shift.copy_(fitted.shift)
        self.standardize.scale.copy_(fitted.scale)

    # -- the maps ------------------------------------------------------------------------------

    def _condition(self, batch: int, condition: Tensor | None, like: Tensor) -> Tensor:
        if condition is None:
            return like.new_zeros(batch, 0)
        return condition.to(like.dtype)

    def encode(self, x: Tensor, condition: Tensor | None = None) -> Tensor:
        """Latent coordinates z = f(x) of data ``(N, D)``: ``(N, d)``."""
        condition = self._condition(x.shape[0], condition, x)
        return self.encoder(self.standardize(x), condition)

    def decode(self, z: Tensor, condition: Tensor | None = None) -> Tensor:
        """Points g(z) on the manifold for latents ``(N, d)``, in data units: ``(N, D)``."""
        condition = self._condition(z.shape[0], condition, z)
        return self.standardize.inverse(self.decoder(z, condition))

    def project(self, x: Tensor, condition: Tensor | None = None) -> Tensor:
        """The projection g(f(x)) of data ``(N, D)`` onto the learned manifold."""
        return self.decode(self.encode(x, condition), condition)

    def reconstruction_error(self, x: Tensor, condition: Tensor | None = None) -> Tensor:
        """Squared distance ||x - g(f(x))||^2 in the data's units, shape ``(N,)``."""
        with torch.no_grad():
            return (x - self.project(x, condition)).pow(2).sum(-1)

    @property
    def latent(self) -> torch.distributions.Distribution:
        """The latent distribution p_Z = N(0, I_d)."""
        zeros = self.standardize.shift.new_zeros(self.latent_features)
        return torch.distributions.Independent(
            torch.distributions.Normal(zeros, torch.ones_like(zeros)), 1
        )

    def sample(self, sample_shape: tuple[int, ...] = (), condition: Tensor | None = None) -> Tensor:
        """Draws g(z), z ~ p_Z: ``(*sample_shape, D)``, or ``(*sample_shape, N, D)`` for a
        condition ``(N, C)`` (one decoder pass per draw)."""
        shape = torch.Size(sample_shape)
        with torch.no_grad():
            if condition is None:
                z = self.latent.sample(shape)
                return self.decode(z.reshape(-1, self.latent_features)).reshape(*shape, -1)
            n = condition.shape[0]
            z = self.latent.sample((*shape, n)).reshape(-1, self.latent_features)
            repeated = condition.repeat(max(shape.numel(), 1), 1)
            return self.decode(z, repeated).reshape(*shape, n, self.features)

    # -- densities and loss -------------------------------------------------------------------

    def log_prob(self, x: Tensor, condition: Tensor | None = None) -> Tensor:
        """Exact log-density on the manifold, log p_Z(f(x)) - 1/2 log det(J_g^T J_g), in the
        data's units (w.r.t. the d-dimensional volume of g(R^d)), float64, shape ``(N,)``.

        It is the density of :meth:`sample` at the projection g(f(x)); read it next to
        :meth:`reconstruction_error`, which says how far x lies off the manifold.
        """
        condition = self.check_data(x, condition)
        with torch.no_grad():
            z = self.encode(x, condition)
            return self._log_prob_at(z, condition)

    def _log_prob_at(self, z: Tensor, condition: Tensor) -> Tensor:
        """log p_Z(z) - 1/2 log det(J_g^T J_g) at latents ``(N, d)``: ``(N,)`` float64."""

        def decode_one(z_row: Tensor, c_row: Tensor) -> Tensor:
            out = self.decoder(z_row[None], c_row[None])[0]
            return self.standardize.inverse(out)

        _, half_log_det = half_log_det_gram(decode_one, z, condition, self.chunk_size)
        return self.latent.log_prob(z).double() - half_log_det

    def loss(self, x: Tensor, condition: Tensor | None = None) -> Tensor:
        """The per-row training loss ``(N,)`` on z-scored, noise-perturbed data."""
        condition = self._condition(x.shape[0], condition, x)
        y = self.standardize(x)
        if self.training and self.noise > 0:
            y = y + self.noise * torch.randn_like(y)
        y = y.detach().requires_grad_(True)
        with torch.enable_grad():
            z, y1, surrogate = injective_surrogate(
                y,
                lambda v: self.encoder(v, condition),
                lambda w: self.decoder(w, condition),
                self.hutchinson_samples,
            )
        reconstruction = (y - y1).pow(2).sum(-1)
        return self.beta * reconstruction - self.latent.log_prob(z) - surrogate

    def extra_repr(self) -> str:
        return (
            f"features={self.features}, latent_features={self.latent_features}, "
            f"condition_features={self.condition_features}, beta={self.beta}, "
            f"noise={self.noise}, log_scale={float(self.standardize.scale.log().sum()):.3g}"
        )
