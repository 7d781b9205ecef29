"""The CMPE posterior: sbi's ``DirectPosterior`` around a consistency model.

Sampling goes through ``DirectPosterior`` (rejection of draws outside the prior support,
``sample_batched`` over many observations). On top of it this class warns clearly when few
draws fall inside the prior support, and ``log_prob`` says that CMPE (Schmitt et al., arXiv
2312.05440) has no tractable density and what to use instead.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from sbi.inference.posteriors import DirectPosterior
from torch import Tensor

from sbiplug.sbi_internals import set_posterior_purpose
from sbiplug.toolkit import check_positive_int
from sbiplug_cmpe.estimator import ConsistencyEstimator, NoDensityError

__all__ = ["CMPEPosterior", "LowAcceptanceWarning"]


class LowAcceptanceWarning(UserWarning):
    """Few CMPE draws fell inside the prior support, so rejection sampling is slow."""


class CMPEPosterior(DirectPosterior):
    """Posterior q(theta | x) sampled by a consistency model; sample-only.

    Arguments:
        posterior_estimator: The trained :class:`ConsistencyEstimator`.
        prior: The prior, whose support draws are restricted to.
        warn_acceptance: Warn when the fraction of draws inside the prior support is below this.
        show_progress_bars: Default of ``show_progress_bars`` in ``sample``/``sample_batched``.
        **kwargs: Passed to ``DirectPosterior`` (``max_sampling_batch_size``, ``device``).
    """

    def __init__(
        self,
        posterior_estimator: ConsistencyEstimator,
        prior: Any,
        warn_acceptance: float = 0.1,
        show_progress_bars: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(posterior_estimator=posterior_estimator, prior=prior, **kwargs)
        self.warn_acceptance = warn_acceptance
        self.show_progress_bars = show_progress_bars
        set_posterior_purpose(
            self,
            "It samples a consistency model in a few network evaluations and rejects draws "
            "outside the prior support. It has no log_prob.",
        )

    @property
    def steps(self) -> int:
        """Number of sampling steps (network evaluations per draw)."""
        return self.posterior_estimator.steps

    @steps.setter
    def steps(self, value: int) -> None:
        self.posterior_estimator.steps = check_positive_int("steps", value, owner="CMPE")

    def sample(self, sample_shape=(), x: Tensor | None = None, **kwargs: Any) -> Tensor:
        """Draw ``sample_shape`` samples for one observation; see ``DirectPosterior.sample``.

        Returns:
            Samples, shape ``(*sample_shape, D)``.
        """
        kwargs.setdefault("show_progress_bars", self.show_progress_bars)
        self.posterior_estimator.num_proposed = 0
        samples = super().sample(sample_shape, x=x, **kwargs)
        self._check_acceptance(torch.Size(sample_shape).numel(), kwargs)
        return samples

    def sample_batched(self, sample_shape, x: Tensor, **kwargs: Any) -> Tensor:
        """Draw ``sample_shape`` samples for each of B observations in one vectorised pass.

        Returns:
            Samples, shape ``(*sample_shape, B, D)``.
        """
        kwargs.setdefault("show_progress_bars", self.show_progress_bars)
        self.posterior_estimator.num_proposed = 0
        samples = super().sample_batched(sample_shape, x, **kwargs)
        self._check_acceptance(torch.Size(sample_shape).numel(), kwargs)
        return samples

    def _check_acceptance(self, num_samples: int, kwargs: dict) -> None:
        proposed = self.posterior_estimator.num_proposed
        if not kwargs.get("reject_outside_prior", True) or proposed == 0 or num_samples == 0:
            return
        # Rejection stops once every observation has enough draws, so this is the rate of the
        # observation that needed the most proposals.
        acceptance = min(num_samples / proposed, 1.0)
        if acceptance < self.warn_acceptance:
            warnings.warn(
                f"CMPE: only {acceptance:.1%} of the consistency-model draws fell inside the "
                "prior support, so rejection sampling had to propose "
                f"{proposed} draws for {num_samples}. The model may be undertrained (train "
                "longer, or try other `steps`), or the observation may lie outside the "
                "training distribution.",
                LowAcceptanceWarning,
                stacklevel=3,
            )

    def log_prob(self, theta: Tensor, x: Tensor | None = None, **kwargs: Any) -> Tensor:
        """Not available: CMPE has no tractable density."""
        raise NoDensityError()

    def log_prob_batched(self, theta: Tensor, x: Tensor, **kwargs: Any) -> Tensor:
        """Not available: CMPE has no tractable density."""
        raise NoDensityError()

    def map(self, *args: Any, **kwargs: Any) -> Tensor:
        """Not available: a MAP search needs the density that CMPE does not have."""
        raise NoDensityError(
            NoDensityError().args[0] + " (map() optimises log_prob, so it is unavailable too.)"
        )

    def __repr__(self) -> str:
        return f"CMPEPosterior(steps={self.steps}, prior={self.prior})"
