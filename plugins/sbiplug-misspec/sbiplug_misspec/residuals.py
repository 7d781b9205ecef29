"""Plug-in residual features: the noise-shape block for vectors and time series.

A single data vector carries no within-set spread to measure, so its noise is seen against the
model's own prediction for it, in the spirit of a posterior predictive check (Gelman, Meng &
Stern 1996) made into test features. For each data vector x (length d): draw K parameters from
the trained posterior q(θ | x) and keep the most probable under q (a MAP estimate θ̂, which
stays on one mode of a multimodal posterior), simulate K replicates x_k at θ̂, and standardise
per element,

    z_j = (x_j − mean_k x_kj) / sd_j,   sd_j = sqrt(var_k x_kj + (0.1 · rms_j' sd_j')²),

(the floor keeps z finite where the simulator is nearly deterministic). The features of z, read
along the vector's order: log mean z², skewness, log kurtosis, log max |z|, the mean (bias),
the lag-1 autocorrelation and the correlation with a linear ramp (drift). Under H0 they are
not standard-normal moments (x itself chose θ̂), but every data set of the test's simulated
null gets the same treatment, so the combined test stays calibrated.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from sbiplug import Simulator

__all__ = ["NUM_PREDICTIVE_DRAWS", "PredictiveResiduals"]

NUM_PREDICTIVE_DRAWS = 16
_FLOOR = 0.1  # sd floor, as a fraction of the row's typical predictive sd
_CHUNK = 2048
_REDRAWS = 4
_FEATURES = (
    ("log_mean_sq", "scale"), ("skewness", "skew"), ("log_kurtosis", "tails"),
    ("log_max_abs", "tails"), ("bias", "bias"), ("lag1_corr", "dependence"),
    ("trend", "dependence"),
)  # fmt: skip


class PredictiveResiduals:
    """Residual features of data vectors against replicates at their MAP fit, ``(B, 7)``.

    Arguments:
        estimator: The trained conditional density estimator of q(θ | x) (``sample(shape,
            condition)`` and ``log_prob``), e.g. an sbi posterior's ``posterior_estimator``.
        simulator: The model: its prior's support and its forward simulation.
        num_draws: K, posterior draws (for the fit) and replicates per data vector.

    Draws use torch's global generator (seed it, or fork it, for reproducible features).
    """

    def __init__(
        self, estimator: Any, simulator: Simulator, num_draws: int = NUM_PREDICTIVE_DRAWS
    ) -> None:
        self.estimator = estimator
        self.simulator = simulator
        self.num_draws = int(num_draws)
        self.names = [f"residual_{label}" for label, _ in _FEATURES]
        self.kinds = [kind for _, kind in _FEATURES]

    @property
    def num_features(self) -> int:
        return len(self.names)

    def __call__(self, x: Tensor) -> Tensor:
        """Features, shape ``(B, 7)`` float64, of data vectors of shape ``(B, d)``."""
        x = torch.as_tensor(x)
        if len(x) == 0:
            return torch.empty(0, self.num_features, dtype=torch.float64)
        return torch.cat([self._features(chunk) for chunk in torch.split(x, _CHUNK)])

    def _draw(self, x: Tensor) -> Tensor:
        """K posterior draws per row inside the prior's support, shape ``(K, B, p)``."""
        prior = self.simulator.prior
        was_training = getattr(self.estimator, "training", False)
        if hasattr(self.estimator, "eval"):
            self.estimator.eval()
        try:
            with torch.no_grad():
                theta = self.estimator.sample((self.num_draws,), condition=x.float())
                for _ in range(_REDRAWS):
                    bad = ~_in_support(prior, theta)
                    if not bad.any():
                        break
                    fresh = self.estimator.sample((self.num_draws,), condition=x.float())
                    theta = torch.where(bad[..., None], fresh, theta)
        finally:
            if was_training:
                self.estimator.train()
        bad = ~_in_support(prior, theta)
        if bad.any():  # leakage: fall back to a prior draw (the same for the model's data)
            fallback = prior.sample(theta.shape[:2]).to(theta.dtype)
            theta = torch.where(bad[..., None], fallback, theta)
        return theta

    def _fit(self, x: Tensor) -> Tensor:
        """The most probable of K posterior draws per row (a MAP estimate), shape ``(B, p)``."""
        theta = self._draw(x)  # (K, B, p)
        with torch.no_grad():
            log_q = self.estimator.log_prob(theta, condition=x.float())  # (K, B)
        log_q = torch.nan_to_num(log_q, nan=-torch.inf)
        best = log_q.argmax(dim=0)
        return theta[best, torch.arange(len(x))]

    def _features(self, x: Tensor) -> Tensor:
        batch = len(x)
        fitted = self._fit(x)
        seed = int(torch.randint(0, 2**62, ()).item())
        repeated = fitted.repeat(self.num_draws, 1)  # (K · B, p), draw-major
        draws = self.simulator.simulate(repeated, seed=seed).to(torch.float64)
        draws = draws.reshape(self.num_draws, batch, -1)
        values = x.to(torch.float64).reshape(batch, -1)
        mean = draws.nanmean(dim=0)
        variance = (draws - mean).square().nanmean(dim=0) * (self.num_draws / (self.num_draws - 1))
        variance = torch.nan_to_num(variance, nan=0.0)
        typical = variance.mean(dim=-1, keepdim=True)
        sd = (variance + _FLOOR**2 * typical).add(1e-24).sqrt()
        z = torch.nan_to_num((values - torch.nan_to_num(mean, nan=0.0)) / sd, nan=0.0)
        return _moments(z)


def _in_support(prior: Any, theta: Tensor) -> Tensor:
    inside = prior.support.check(theta)
    while inside.ndim > theta.ndim - 1:
        inside = inside.all(-1)
    return inside & torch.isfinite(theta).all(-1)


def _moments(z: Tensor) -> Tensor:
    """The seven residual features of standardised residuals ``(B, d)``: ``(B, 7)``."""
    d = z.shape[1]
    second = z.square().mean(-1)
    centred = z - z.mean(-1, keepdim=True)
    spread = centred.square().mean(-1).add(1e-12)
    skewness = centred.pow(3).mean(-1) / spread.pow(1.5)
    kurtosis = (centred.pow(4).mean(-1) / spread.square()).add(1e-12).log()
    largest = z.abs().amax(-1).add(1e-12).log()
    bias = z.mean(-1) / second.add(1e-12).sqrt()
    energy = z.square().sum(-1).add(1e-12)
    lag1 = (z[:, 1:] * z[:, :-1]).sum(-1) / energy if d > 1 else torch.zeros_like(second)
    ramp = torch.linspace(-1.0, 1.0, d, dtype=z.dtype)
    trend = (z * ramp).sum(-1) / (energy * ramp.square().sum().clamp_min(1e-12)).sqrt()
    return torch.stack(
        [second.add(1e-12).log(), skewness, kurtosis, largest, bias, lag1, trend], dim=-1
    )
