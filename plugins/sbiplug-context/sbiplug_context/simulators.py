"""Set-valued simulators with a random number of trials per data set and exact posteriors.

Each data set is a set of ``k`` trials, ``k`` drawn from ``[min_trials, max_trials]``
uniformly by default (``trial_law="uniform"``) or log-uniformly (``"log_uniform"``: as many data
sets with 5-10 trials as with 100-200), stored NaN-padded to ``(max_trials, d)``
(:mod:`sbiplug_context.padding`). Both models have a closed-form Gaussian posterior, so C2ST
against the truth can be measured at every trial count.

- ``gaussian_sets``: μ ~ N(0, s0² I_d), trials x_k ~ N(μ, σ² I_d) (the Gaussian-means model).
- ``mixed_effects``: a random-intercept linear model. β = (β0, β1) ~ N(0, I); per data set a
  subject effect u ~ N(0, τ²); trial k is (z_k, y_k) with z_k ~ N(0, 1) and
  y_k = β0 + β1 z_k + u + ε_k, ε_k ~ N(0, σ²). Marginally y ~ N(Zβ, σ² I + τ² 1 1ᵀ), a
  Gaussian linear model in β, so p(β | z, y) is Gaussian (z carries no information on β).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy.special import ndtri
from torch import Tensor
from torch.distributions import Distribution, MultivariateNormal

from sbiplug import Simulator
from sbiplug.toolkit import (
    SeedLike,
    as_generator,
    check_num_samples,
    check_positive,
    check_positive_int,
)
from sbiplug_context.padding import check_sets, pad_sets, set_mask

__all__ = ["TRIAL_LAWS", "GaussianSets", "MixedEffects", "SetSimulator"]

_TINY = np.finfo(np.float64).tiny
TRIAL_LAWS = ("uniform", "log_uniform")


class SetSimulator(Simulator):
    """A simulator of NaN-padded sets with ``min_trials`` to ``max_trials`` trials of dimension
    ``element_dim``; subclasses implement :meth:`_simulate_sets` and :meth:`_posterior_moments`.
    """

    element_dim = 1
    #: ``(low, high)`` to draw trial counts from instead of the full range (same width).
    draw_trials: tuple[int, int] | None = None

    def __init__(self, min_trials: int, max_trials: int, trial_law: str = "uniform") -> None:
        owner = f"simulator {self.name!r}"
        if trial_law not in TRIAL_LAWS:
            raise ValueError(
                f"{owner}: trial_law must be one of {', '.join(map(repr, TRIAL_LAWS))}, "
                f"got {trial_law!r}"
            )
        self.trial_law = trial_law
        self.min_trials = check_positive_int("min_trials", min_trials, owner=owner)
        self.max_trials = check_positive_int("max_trials", max_trials, owner=owner)
        if min_trials > max_trials:
            raise ValueError(
                f"{owner}: min_trials ({min_trials}) must not exceed max_trials ({max_trials})"
            )
        self.observation_shape = (self.max_trials, self.element_dim)

    def _simulate(self, theta: Tensor, rng: np.random.Generator) -> Tensor:
        n, width = len(theta), self.max_trials * self.element_dim
        # one uniform block per call, one row per data set, so batches equal their rows in turn
        uniform = rng.random((n, 1 + self.noise_width + width)).clip(_TINY, 1 - 1e-16)
        low, high = self.draw_trials or (self.min_trials, self.max_trials)
        sizes = self._trial_counts(uniform[:, 0], low, high)
        noise = ndtri(uniform[:, 1:])
        x = self._simulate_sets(theta.double().numpy(), noise)
        x[np.arange(self.max_trials)[None, :] >= sizes[:, None]] = np.nan
        return torch.as_tensor(x, dtype=torch.float32)

    def _trial_counts(self, uniform: np.ndarray, low: int, high: int) -> np.ndarray:
        """Trial counts ``(n,)`` in ``[low, high]`` from uniforms ``(n,)`` in (0, 1)."""
        if self.trial_law == "uniform":
            counts = low + np.floor(uniform * (high - low + 1))
        else:
            # k = floor(exp(U)), U uniform on [log low, log(high + 1)): P(k) ∝ log((k + 1) / k)
            counts = np.floor(np.exp(np.log(low) + uniform * np.log((high + 1) / low)))
        return np.clip(counts, low, high).astype(int)

    noise_width = 0  # extra standard normals per data set before the per-trial ones

    def _simulate_sets(self, theta: np.ndarray, noise: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _posterior_moments(self, x: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    # -- padded data ----------------------------------------------------------------------------

    def valid_rows(self, x: Tensor) -> Tensor:
        """Rows whose present trials are finite and whose size is in range: ``(n,)`` bools."""
        mask = set_mask(x)
        finite = torch.where(mask.unsqueeze(-1), torch.isfinite(x), True).all(dim=(1, 2))
        sizes = mask.sum(dim=1)
        return finite & (sizes >= self.min_trials) & (sizes <= self.max_trials)

    def format_observations(self, observations: Any) -> Tensor:
        """Observed sets of any sizes in range as padded data ``(n, max_trials, element_dim)``.

        Arguments:
            observations: One set ``(k, d)``, a sequence of sets ``(k_i, d)`` or flat rows of
                ``k_i * d`` numbers, or already padded data ``(n, max_trials, d)``.
        """
        if isinstance(observations, (Tensor, np.ndarray)) and np.ndim(observations) == 2:
            observations = [observations]
        return pad_sets(
            observations,
            self.max_trials,
            element_dim=self.element_dim,
            min_trials=self.min_trials,
        )

    def reference_posterior(
        self, x_o: Tensor, num_samples: int, *, seed: SeedLike = None
    ) -> Tensor:
        """Exact draws ``(num_samples, num_parameters)`` from p(θ | x_o), x_o padded or not."""
        x_o = self.format_observations(
            torch.as_tensor(x_o, dtype=torch.float32).reshape(-1, self.element_dim)
        )[0]
        num_samples = check_num_samples(num_samples, self.name)
        mean, cov = self._posterior_moments(x_o.double())
        rng = as_generator(seed)
        factor = torch.linalg.cholesky(cov).numpy()
        draws = mean.numpy() + rng.standard_normal((num_samples, len(mean))) @ factor.T
        return torch.as_tensor(draws, dtype=torch.float32)

    def posterior_moments(self, x_o: Tensor) -> tuple[Tensor, Tensor]:
        """Exact posterior mean ``(p,)`` and covariance ``(p, p)`` of one padded set."""
        x_o = torch.as_tensor(x_o, dtype=torch.float64)
        check_sets(
            x_o.unsqueeze(0),
            self.element_dim,
            min_trials=self.min_trials,
            max_trials=self.max_trials,
            owner=f"simulator {self.name!r}",
        )
        return self._posterior_moments(x_o)


class GaussianSets(SetSimulator):
    """μ ~ N(0, prior_scale² I), trials x_k ~ N(μ, noise_scale² I), k in [min, max] trials.

    Arguments:
        min_trials, max_trials: The range of the number of trials per data set.
        dim: Dimension of μ and of each trial.
        prior_scale: Prior standard deviation of μ.
        noise_scale: Standard deviation of a trial around μ.
        trial_law: How trial counts are drawn: ``"uniform"`` or ``"log_uniform"``.
    """

    name = "gaussian_sets"

    def __init__(
        self,
        min_trials: int = 5,
        max_trials: int = 200,
        dim: int = 2,
        prior_scale: float = 1.0,
        noise_scale: float = 1.0,
        trial_law: str = "uniform",
    ) -> None:
        self.element_dim = check_positive_int("dim", dim, owner=f"simulator {self.name!r}")
        self.parameter_names = tuple(f"mu_{i + 1}" for i in range(dim))
        self.prior_scale = check_positive("prior_scale", prior_scale)
        self.noise_scale = check_positive("noise_scale", noise_scale)
        super().__init__(min_trials, max_trials, trial_law)
        self._prior = MultivariateNormal(torch.zeros(dim), prior_scale**2 * torch.eye(dim))

    @property
    def prior(self) -> Distribution:
        return self._prior

    def _simulate_sets(self, theta: np.ndarray, noise: np.ndarray) -> np.ndarray:
        noise = noise.reshape(len(theta), self.max_trials, self.element_dim)
        return theta[:, None, :] + self.noise_scale * noise

    def _posterior_moments(self, x: Tensor) -> tuple[Tensor, Tensor]:
        present = x[set_mask(x)]
        precision = 1 / self.prior_scale**2 + len(present) / self.noise_scale**2
        mean = present.sum(0) / self.noise_scale**2 / precision
        return mean, torch.eye(self.element_dim, dtype=torch.float64) / precision

    def __repr__(self) -> str:
        return (
            f"GaussianSets(min_trials={self.min_trials}, max_trials={self.max_trials}, "
            f"dim={self.element_dim}, prior_scale={self.prior_scale}, "
            f"noise_scale={self.noise_scale}, trial_law={self.trial_law!r})"
        )


class MixedEffects(SetSimulator):
    """Random-intercept regression: trials (z_k, y_k), y_k = β0 + β1 z_k + u + ε_k.

    Arguments:
        min_trials, max_trials: The range of the number of trials per data set.
        subject_scale: τ, the standard deviation of the per-data-set intercept u.
        noise_scale: σ, the standard deviation of ε_k.
        trial_law: How trial counts are drawn: ``"uniform"`` or ``"log_uniform"``.
    """

    name = "mixed_effects"
    parameter_names = ("beta_0", "beta_1")
    element_dim = 2
    noise_width = 1

    def __init__(
        self,
        min_trials: int = 5,
        max_trials: int = 200,
        subject_scale: float = 0.5,
        noise_scale: float = 1.0,
        trial_law: str = "uniform",
    ) -> None:
        self.subject_scale = check_positive("subject_scale", subject_scale)
        self.noise_scale = check_positive("noise_scale", noise_scale)
        super().__init__(min_trials, max_trials, trial_law)
        self._prior = MultivariateNormal(torch.zeros(2), torch.eye(2))

    @property
    def prior(self) -> Distribution:
        return self._prior

    def _simulate_sets(self, theta: np.ndarray, noise: np.ndarray) -> np.ndarray:
        u = self.subject_scale * noise[:, :1]
        trials = noise[:, 1:].reshape(len(theta), self.max_trials, 2)
        z = trials[..., 0]
        y = theta[:, :1] + theta[:, 1:2] * z + u + self.noise_scale * trials[..., 1]
        return np.stack([z, y], axis=-1)

    def _posterior_moments(self, x: Tensor) -> tuple[Tensor, Tensor]:
        present = x[set_mask(x)]
        n, z, y = len(present), present[:, 0], present[:, 1]
        design = torch.stack([torch.ones_like(z), z], dim=1)  # (n, 2)
        s2, t2 = self.noise_scale**2, self.subject_scale**2
        c = t2 / (s2 + n * t2)
        # Zᵀ Σ⁻¹ with Σ⁻¹ = (I − c 1 1ᵀ) / σ²
        weighted = (design.T - c * design.sum(0, keepdim=True).T) / s2  # (2, n)
        precision = torch.eye(2, dtype=torch.float64) + weighted @ design
        cov = torch.linalg.inv(precision)
        return cov @ (weighted @ y), cov

    def __repr__(self) -> str:
        return (
            f"MixedEffects(min_trials={self.min_trials}, max_trials={self.max_trials}, "
            f"subject_scale={self.subject_scale}, noise_scale={self.noise_scale}, "
            f"trial_law={self.trial_law!r})"
        )
