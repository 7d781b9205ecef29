"""Learnable, conditional latent distributions for manifold free-form flows (M-FFF).

Sorrenson et al., *Learning Distributions on Manifolds with Free-form Flows* (arXiv 2312.09852)
train the Earth-data flows on S^2 with a learnable von Mises-Fisher mixture as the latent
instead of the uniform distribution. Here the mixture's weights, mean directions and
concentrations are the outputs of a small network of the embedded condition, so that in SBI
the latent p_Z(z | x) already sits near the posterior and the free-form flow learns only a
correction: a narrow posterior no longer has to be squeezed out of the uniform distribution by
a strongly contracting (hard to invert) decoder. The density stays exact,
log q(theta | x) = log p_Z(f(theta, x) | x) - log|det R^T J_g Q|.

| manifold | mixture component |
|---|---|
| sphere S^(p-1) | von Mises-Fisher, C_p(kappa) exp(kappa mu.z) |
| torus T^k | product of k von Mises, prod_i exp(kappa_i cos(a_i - mu_i)) / (2 pi I_0(kappa_i)) |

Densities are with respect to the manifold's volume, like :class:`UniformManifold`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.distributions import Categorical, VonMises

from sbiplug_fff.distributions import VonMisesFisher, vmf_log_normaliser
from sbiplug_fff.manifolds import Manifold, Sphere, Torus

__all__ = ["LATENT_NAMES", "ConditionalMixtureLatent", "resolve_latent"]

LATENT_NAMES = ("auto", "mixture", "uniform")

# Concentrations are exp(raw) clamped to this range: below, the component is uniform to
# float precision; above, the mode is narrower than any posterior the flows are used for.
_LOG_KAPPA_RANGE = (-7.0, 9.0)


def resolve_latent(latent: str, manifold: Manifold) -> str:
    """``"auto"`` -> ``"mixture"`` on the sphere and the torus, ``"uniform"`` elsewhere (SO(3)).

    Raises ``ValueError`` for an unknown name or a mixture on a manifold without one.
    """
    if latent not in LATENT_NAMES:
        raise ValueError(f"unknown latent {latent!r}; supported latents: {', '.join(LATENT_NAMES)}")
    has_mixture = isinstance(manifold, (Sphere, Torus))
    if latent == "auto":
        return "mixture" if has_mixture else "uniform"
    if latent == "mixture" and not has_mixture:
        raise ValueError(
            f"the mixture latent exists on the sphere and the torus, not on {manifold}; "
            "use latent='uniform'"
        )
    return latent


class ConditionalMixtureLatent(nn.Module):
    """p_Z(z | c): a mixture of M von Mises(-Fisher) components on the sphere or the torus.

    Arguments:
        manifold: A :class:`~sbiplug_fff.manifolds.Sphere` or
            :class:`~sbiplug_fff.manifolds.Torus`.
        condition_features: Dimension C of the (embedded) condition; 0 gives an unconditional,
            learnable mixture.
        components: Number M of mixture components.
        hidden_features: Width of the two hidden layers mapping c to the mixture parameters.
        initial_concentration: kappa of every component at initialisation (small = broad).

    At initialisation the mixture does not depend on c: the last layer's weights are zero and
    its bias holds equal weights, random mean directions and ``initial_concentration``.
    """

    def __init__(
        self,
        manifold: Manifold,
        condition_features: int,
        *,
        components: int = 4,
        hidden_features: int = 64,
        initial_concentration: float = 1.0,
    ):
        super().__init__()
        resolve_latent("mixture", manifold)  # raises on SO(3)
        if components < 1:
            raise ValueError(f"the mixture needs at least one component, got {components}")
        if initial_concentration <= 0:
            raise ValueError(f"initial_concentration must be > 0, got {initial_concentration}")
        self.manifold = manifold
        self.components = int(components)
        # per component: a logit, the location (one unit 2-vector per circle on the torus, one
        # unit p-vector on the sphere) and the log-concentrations (one per circle / one)
        self._location_size = manifold.embedding_dim
        self._kappa_size = manifold.dim if isinstance(manifold, Torus) else 1
        out = self.components * (1 + self._location_size + self._kappa_size)
        self.net = nn.Sequential(
            nn.Linear(condition_features, hidden_features),
            nn.SiLU(),
            nn.Linear(hidden_features, hidden_features),
            nn.SiLU(),
            nn.Linear(hidden_features, out),
        )
        last = self.net[-1]
        nn.init.zeros_(last.weight)
        with torch.no_grad():
            locations = manifold.sample_uniform((self.components,))
            log_kappa = torch.full(
                (self.components, self._kappa_size), math.log(initial_concentration)
            )
            logits = torch.zeros(self.components, 1)
            last.bias.copy_(torch.cat([logits, locations, log_kappa], dim=-1).reshape(-1))

    def parameters_at(self, condition: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Mixture parameters for conditions ``(B, C)``.

        Returns:
            log weights ``(B, M)``, unit locations ``(B, M, D)`` (on the manifold) and
            concentrations ``(B, M, k)`` (k circles on the torus, 1 on the sphere).
        """
        raw = self.net(condition).reshape(*condition.shape[:-1], self.components, -1)
        logits, locations, log_kappa = raw.split([1, self._location_size, self._kappa_size], dim=-1)
        log_weights = torch.log_softmax(logits.squeeze(-1), dim=-1)
        kappa = log_kappa.clamp(*_LOG_KAPPA_RANGE).exp()
        return log_weights, self.manifold.project(locations), kappa

    def log_prob(self, z: Tensor, condition: Tensor) -> Tensor:
        """log p_Z(z | c) w.r.t. the manifold volume, for z ``(B, D)``, c ``(B, C)``: ``(B,)``."""
        log_weights, locations, kappa = self.parameters_at(condition)
        z = z.unsqueeze(-2)  # (B, 1, D) against (B, M, D)
        if isinstance(self.manifold, Torus):
            k = self.manifold.dim
            cosine = (
                z.reshape(*z.shape[:-1], k, 2) * locations.reshape(*locations.shape[:-1], k, 2)
            ).sum(-1)
            # log I_0(kappa) = log i0e(kappa) + kappa, stable for large kappa
            log_normaliser = math.log(2 * math.pi) + torch.log(torch.special.i0e(kappa)) + kappa
            component = (kappa * cosine - log_normaliser).sum(-1)
        else:
            kappa = kappa.squeeze(-1)
            cosine = (z * locations).sum(-1)
            component = vmf_log_normaliser(kappa, self.manifold.embedding_dim) + kappa * cosine
        return torch.logsumexp(log_weights + component, dim=-1)

    @torch.no_grad()
    def sample(self, condition: Tensor) -> Tensor:
        """One draw per condition: c ``(B, C)`` -> z ``(B, D)`` on the manifold."""
        log_weights, locations, kappa = self.parameters_at(condition)
        index = Categorical(logits=log_weights).sample()  # (B,)
        rows = torch.arange(len(index), device=index.device)
        location, concentration = locations[rows, index], kappa[rows, index]
        if isinstance(self.manifold, Torus):
            angles = self.manifold.to_angles(location)
            # torch's sampler works in float64 internally; wrap its (-pi, pi] output
            draws = VonMises(angles.double(), concentration.double()).sample()
            return Torus.from_angles(draws).to(location.dtype)
        return VonMisesFisher(location, concentration.squeeze(-1)).sample()
